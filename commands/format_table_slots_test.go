package commands

import (
	"testing"
	"time"
)

// A table waits for a drawing slot while every one is taken, and is drawn
// once one is free; SetTableDraws sets how many there are.
func TestTableDrawsWaitForASlot(t *testing.T) {
	SetTableDraws(1)
	defer SetTableDraws(0)
	release := drawSlot()
	drawn := make(chan []string, 1)
	go func() {
		lines, err := renderTable([]string{"Name", "Id"}, [][]string{{"web1", "0004fb00000600001"}})
		if err != nil {
			t.Error(err)
		}
		drawn <- lines
	}()
	var s tableStream
	streamed := make(chan []string, 1)
	go func() {
		lines, err := s.block([]Row{{Name: "web2", ID: "0004fb00000600002"}})
		if err != nil {
			t.Error(err)
		}
		streamed <- lines
	}()
	select {
	case <-drawn:
		t.Fatal("a table was drawn while the only drawing slot was taken")
	case <-streamed:
		t.Fatal("a streamed block was drawn while the only drawing slot was taken")
	default:
	}
	release()
	// A streamed block holds its bottom border back (tableStream.end).
	for ch, want := range map[chan []string]int{drawn: 5, streamed: 4} {
		select {
		case lines := <-ch:
			if len(lines) != want {
				t.Fatalf("the table drawn after the slot was freed is %q, want %d lines", lines, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a table was never drawn after the slot was freed")
		}
	}

	SetTableDraws(2)
	r1, r2 := drawSlot(), drawSlot() // two slots: neither waits
	r1()
	r2()
}
