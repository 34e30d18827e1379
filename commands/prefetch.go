package commands

import (
	"context"
	"strings"
)

// Prefetch reads ahead what the show Vm commands of lines will read, in
// a few reads for all of them (backend PrefetchShownVMs): a stdin batch
// hands it the lines the client has already sent, before running them.
// Nothing runs, nothing is printed and nothing is refused here: a line
// that does not parse is left to RunLine, which reports it. Lines that
// cannot be show commands are passed over without being parsed.
func (s *Session) Prefetch(ctx context.Context, lines []string) {
	var ids, names []string
	for _, line := range lines {
		if !mayShow(line) {
			continue
		}
		for _, p := range s.reg.ParseLine(line) {
			c := p.Cmd
			if c == nil || c.Help || c.Spec == nil || c.Spec.Verb != "show" || c.Spec.Type != "Vm" || c.Instance == nil {
				continue
			}
			if c.Instance.ByID {
				ids = append(ids, c.Instance.Value)
			} else {
				names = append(names, c.Instance.Value)
			}
		}
	}
	if len(ids)+len(names) == 0 {
		return
	}
	if err := s.backend.PrefetchShownVMs(ctx, ids, names); err != nil {
		s.log.Debug("reading ahead the VMs of the batch's show lines failed; each show reads its own", "err", err)
	}
}

// mayShow reports whether line may hold a show command: "show" somewhere
// in it, in any case (a line may hold several commands).
func mayShow(line string) bool {
	for i := 0; i+4 <= len(line); i++ {
		if (line[i] == 's' || line[i] == 'S') && strings.EqualFold(line[i:i+4], "show") {
			return true
		}
	}
	return false
}
