package main

import (
	"fmt"
	"time"
)

// side is one of the things a figure measures in turn: its own operation
// or a baseline.
type side struct {
	name  string
	run   func(round int) (time.Duration, error) // one measurement
	times []time.Duration                        // kept measurements
}

// takeTurns runs every side once as a warm-up (round 0, not kept: the
// first of a kind pays for cold caches and code paths), then rounds
// rounds, each side once a round; after each kept round it calls done.
// Which side goes first rotates, and every other round takes them in the
// reverse order, so that no side always follows the same one (a side
// pays for some of what the one before left: the file system's frees,
// its write-back).
func takeTurns(sides []*side, rounds int, done func(round int)) error {
	n := len(sides)
	for round := range rounds + 1 {
		for k := range n {
			i := (round + k) % n
			if round%2 == 1 {
				i = ((round-k)%n + n) % n
			}
			s := sides[i]
			d, err := s.run(round)
			if err != nil {
				if round == 0 {
					return fmt.Errorf("warm-up, %s: %w", s.name, err)
				}
				return fmt.Errorf("round %d, %s: %w", round, s.name, err)
			}
			if round > 0 {
				s.times = append(s.times, d)
			}
		}
		if round > 0 && done != nil {
			done(round)
		}
	}
	return nil
}
