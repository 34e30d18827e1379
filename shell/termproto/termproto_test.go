package termproto

import (
	"net"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ca, cb := NewConn(a), NewConn(b)
	msgs := []Msg{
		{Op: OpHello, History: []string{"list Vm", "show Vm name=\"a b\""}, Prompt: "OVM> "},
		{Op: OpComplete, Line: "start Vm name=w", Items: []Item{{Text: "web1 ", Desc: "Vm"}}},
		{Op: OpOut, Data: "line one\nline two\x1b[0m\n"},
		{Op: OpDone, Exit: true},
		{Op: OpOut, Data: strings.Repeat("x", 200000)},
	}
	go func() {
		for _, m := range msgs {
			ca.Send(m)
		}
	}()
	for _, want := range msgs {
		got, err := cb.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
}

func TestRecvRefusesOversizeAndGarbage(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go a.Write([]byte("not json\n"))
	if _, err := NewConn(b).Recv(); err == nil {
		t.Fatal("garbage decoded")
	}
}
