package xmlrpcwire

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// Fault is the fault a methodResponse carries instead of a value.
type Fault struct {
	Code   int64
	String string
}

func (f *Fault) Error() string { return fmt.Sprintf("fault %d: %s", f.Code, f.String) }

// DecodeResponse decodes one XML-RPC methodResponse, the whole of data,
// into the generic values DecodeCall gives for parameters; a fault
// response is a *Fault error (its faultCode and faultString). Data longer
// than MaxResponseBytes or nested deeper than MaxDepth is an error, and
// so is anything after the response. As in DecodeCall, fastTokens reads
// what the agent writes, and encoding/xml anything else; errors do not
// quote the data.
func DecodeResponse(data []byte) (any, error) {
	if len(data) > MaxResponseBytes {
		return nil, fmt.Errorf("response larger than %d bytes", MaxResponseBytes)
	}
	d := &decoder{toks: &fastTokens{data: data}}
	if v, err := d.response(); err == nil || isFault(err) {
		return v, err
	}
	x := xml.NewDecoder(bytes.NewReader(data))
	d = &decoder{toks: xmlTokens{x}, buf: d.buf}
	v, err := d.response()
	if err != nil && !isFault(err) {
		line, _ := x.InputPos()
		return nil, fmt.Errorf("decode response (line %d): not a methodResponse of XML-RPC", line)
	}
	return v, err
}

func isFault(err error) bool {
	var f *Fault
	return errors.As(err, &f)
}

func (d *decoder) response() (any, error) {
	if err := d.expectStart("methodResponse"); err != nil {
		return nil, err
	}
	tok, err := d.next()
	if err != nil {
		return nil, err
	}
	var v any
	switch {
	case tok.kind == startToken && tok.name == "params":
		if err := d.expectStart("param"); err != nil {
			return nil, err
		}
		if err := d.expectStart("value"); err != nil {
			return nil, err
		}
		if v, err = d.value(1); err != nil {
			return nil, err
		}
		if err := d.expectEnd("param"); err != nil {
			return nil, err
		}
		if err := d.expectEnd("params"); err != nil {
			return nil, err
		}
	case tok.kind == startToken && tok.name == "fault":
		if err := d.expectStart("value"); err != nil {
			return nil, err
		}
		fv, err := d.value(1)
		if err != nil {
			return nil, err
		}
		if err := d.expectEnd("fault"); err != nil {
			return nil, err
		}
		m, _ := fv.(map[string]any)
		code, okCode := m["faultCode"].(int64)
		text, okText := m["faultString"].(string)
		if !okCode || !okText {
			return nil, errors.New("a fault without an integer faultCode and a string faultString")
		}
		if err := d.end(); err != nil {
			return nil, err
		}
		return nil, &Fault{Code: code, String: text}
	default:
		return nil, fmt.Errorf("want <params> or <fault>, got %s", describe(tok))
	}
	return v, d.end()
}

// end reads the end of a methodResponse: </methodResponse> and nothing
// after it but blanks.
func (d *decoder) end() error {
	if err := d.expectEnd("methodResponse"); err != nil {
		return err
	}
	for {
		tok, err := d.toks.token()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		case tok.kind != textToken || len(bytes.TrimSpace(tok.text)) > 0:
			return errors.New("data after </methodResponse>")
		}
	}
}
