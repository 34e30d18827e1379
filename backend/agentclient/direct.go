package agentclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/xmlrpcwire"
)

// maxDirectAnswer bounds the answer callDirect reads: list_vms of a full
// server is some tens of kB; an agent that sends more is not believed.
const maxDirectAnswer = xmlrpcwire.MaxResponseBytes

// callDirect is call for the methods the watcher makes of every server at
// every beat or reconciliation (get_events, list_vms): the same request,
// answer and errors, made with net/http itself rather than through kolo's
// client, which runs each call in a goroutine of its own (so that a wait
// can end on ctx) beside net/rpc's, and reads an answer of any size. Here
// the request carries ctx and the timeout, and the answer is bounded by
// maxDirectAnswer and decoded by xmlrpcwire (the agent's own codec: a
// fraction of the CPU and allocations of kolo's reflection over
// encoding/xml's tokens), which also encodes the call.
func (c *Client) callDirect(ctx context.Context, method string, result any, args []any) error {
	if err := c.acquire(ctx, method, args); err != nil {
		return err
	}
	defer func() {
		<-c.sem
		// A call that ends after Close leaves no idle connection behind,
		// as kolo's clients do not (put).
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			c.httpConn.CloseIdleConnections()
		}
	}()
	fail := func(err error) error { return &CallError{method, c.Address(), err} }
	var body bytes.Buffer
	if err := xmlrpcwire.EncodeCall(&body, method, args...); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrInvalidCall, err))
	}
	tctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(tctx, http.MethodPost, c.url, &body)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrInvalidCall, err))
	}
	req.Header.Set("Content-Type", "text/xml")
	// ended says why a call whose context ended failed: ctx's own end, or
	// the client's timeout.
	ended := func(err error) error {
		switch {
		case ctx.Err() != nil:
			return fail(fmt.Errorf("%w: %w", ErrUnreachable, ctx.Err()))
		case tctx.Err() != nil:
			return fail(fmt.Errorf("%w: no answer within %s", ErrUnreachable, c.cfg.Timeout))
		}
		return fail(classifyTransportError(err))
	}
	resp, err := c.direct.Do(req)
	if err != nil {
		return ended(err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fail(ErrUnauthorized)
	case resp.StatusCode == http.StatusTooManyRequests:
		return fail(ErrTooManyFailures)
	case resp.StatusCode < 200 || resp.StatusCode >= 300:
		return fail(fmt.Errorf("%w: HTTP status %d", ErrProtocol, resp.StatusCode))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDirectAnswer+1))
	if err != nil {
		return ended(err)
	}
	if len(data) > maxDirectAnswer {
		return fail(fmt.Errorf("%w: the answer is longer than %d bytes", ErrProtocol, maxDirectAnswer))
	}
	raw, err := xmlrpcwire.DecodeResponse(data)
	var fault *xmlrpcwire.Fault
	switch {
	case errors.As(err, &fault):
		return fail(agentapi.ParseFaultString(agentapi.FaultCode(fault.Code), fault.String))
	case err != nil:
		return fail(fmt.Errorf("%w: %w", ErrProtocol, err))
	}
	if err := agentapi.Decode(raw, result); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrProtocol, err))
	}
	return nil
}
