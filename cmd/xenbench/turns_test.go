package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// takeTurns warms every side up once, keeps rounds measurements of each,
// and varies which side goes first and which comes before which.
func TestTakeTurns(t *testing.T) {
	for _, tt := range []struct {
		sides, rounds int
		want          string // the order, rounds separated by |
	}{
		{1, 2, "a|a|a"},
		{2, 3, "ab|ba|ab|ba"},
		{3, 3, "abc|bac|cab|acb"},
		{4, 4, "abcd|badc|cdab|dcba|abcd"},
	} {
		var order []string
		var sides []*side
		for i := range tt.sides {
			name := string(rune('a' + i))
			sides = append(sides, &side{name: name, run: func(round int) (time.Duration, error) {
				if len(order) <= round {
					order = append(order, "")
				}
				order[round] += name
				return time.Duration(round), nil
			}})
		}
		var done []int
		if err := takeTurns(sides, tt.rounds, func(r int) { done = append(done, r) }); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(order, "|"); got != tt.want {
			t.Errorf("%d sides, %d rounds: order %s, want %s", tt.sides, tt.rounds, got, tt.want)
		}
		for _, s := range sides {
			want := []time.Duration{}
			for r := 1; r <= tt.rounds; r++ {
				want = append(want, time.Duration(r))
			}
			if !slices.Equal(s.times, want) {
				t.Errorf("%d sides: side %s kept %v, want %v (the warm-up left out)", tt.sides, s.name, s.times, want)
			}
		}
		if len(done) != tt.rounds || done[0] != 1 {
			t.Errorf("done called for rounds %v, want 1..%d", done, tt.rounds)
		}
	}
}

// An error stops the turns and says in which round, warm-up or not.
func TestTakeTurnsError(t *testing.T) {
	boom := errors.New("boom")
	for _, failAt := range []int{0, 2} {
		s := &side{name: "x", run: func(round int) (time.Duration, error) {
			if round == failAt {
				return 0, boom
			}
			return 1, nil
		}}
		err := takeTurns([]*side{s}, 3, nil)
		if !errors.Is(err, boom) {
			t.Fatalf("fail at %d: %v", failAt, err)
		}
		want := map[int]string{0: "warm-up, x", 2: "round 2, x"}[failAt]
		if !strings.Contains(err.Error(), want) {
			t.Errorf("fail at %d: %q does not say %q", failAt, err, want)
		}
	}
}
