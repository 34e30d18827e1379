// Package termproto is the protocol between the manager and the front-end
// process of an interactive session: JSON messages, one per line, over the
// socket the front-end inherits. The front-end edits lines and draws; the
// manager runs commands, completes words and keeps history. The front-end
// holds no credentials and opens no database.
package termproto

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// Operations. The front-end sends Hello, Complete, Run, Interrupt and In;
// the manager answers Hello and Complete, and streams Out, Progress and Raw
// messages during a Run, which ends with Done.
const (
	OpHello     = "hello"     // f->m: start; m->f: History, Prompt
	OpComplete  = "complete"  // f->m: Line; m->f: Start, Items
	OpRun       = "run"       // f->m: Line, Width
	OpOut       = "out"       // m->f: Data to print
	OpProgress  = "progress"  // m->f: Data to draw in place ("" clears it)
	OpRaw       = "raw"       // m->f: On: switch the terminal to raw mode and forward keys as In
	OpIn        = "in"        // f->m: Data typed while raw
	OpInterrupt = "interrupt" // f->m: Ctrl-C while a command runs
	OpDone      = "done"      // m->f: the command ended; Exit: the session ends
)

// Item is one completion.
type Item struct {
	Text string `json:"text"`
	Desc string `json:"desc,omitempty"`
}

// Msg is every message; fields not used by an operation are left out.
type Msg struct {
	Op      string   `json:"op"`
	Line    string   `json:"line,omitempty"`
	Width   int      `json:"width,omitempty"`
	Data    string   `json:"data,omitempty"`
	On      bool     `json:"on,omitempty"`
	Exit    bool     `json:"exit,omitempty"`
	Start   int      `json:"start,omitempty"`
	Items   []Item   `json:"items,omitempty"`
	History []string `json:"history,omitempty"`
	Prompt  string   `json:"prompt,omitempty"`
}

// MaxMsgBytes bounds one message.
const MaxMsgBytes = 4 << 20

// Conn reads and writes messages; writes are safe from several goroutines.
type Conn struct {
	r  *bufio.Reader
	mu sync.Mutex // guards w
	w  io.Writer
}

// NewConn wraps rw.
func NewConn(rw io.ReadWriter) *Conn {
	return &Conn{r: bufio.NewReaderSize(rw, 64*1024), w: rw}
}

// Send writes one message.
func (c *Conn) Send(m Msg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err = c.w.Write(b)
	return err
}

// Recv reads one message.
func (c *Conn) Recv() (Msg, error) {
	var line []byte
	for {
		chunk, err := c.r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxMsgBytes {
			return Msg{}, fmt.Errorf("termproto: message longer than %d bytes", MaxMsgBytes)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return Msg{}, err
		}
		break
	}
	var m Msg
	if err := json.Unmarshal(line, &m); err != nil {
		return Msg{}, fmt.Errorf("termproto: %w", err)
	}
	return m, nil
}
