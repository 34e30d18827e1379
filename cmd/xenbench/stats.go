package main

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// median of xs (0 for none).
func median(xs []float64) float64 { return percentile(xs, 50) }

// percentile p (0..100) of xs by the nearest-rank method.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func durationsMS(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	return out
}

// fmtMS prints milliseconds with a precision that suits their size.
func fmtMS(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	case v >= 1:
		return fmt.Sprintf("%.2f ms", v)
	default:
		return fmt.Sprintf("%.3f ms", v)
	}
}

func fmtMB(kb int64) string { return fmt.Sprintf("%.1f MB", float64(kb)/1024) }

func fmtPct(v float64) string { return fmt.Sprintf("%.2f %%", v) }

func fmtRate(v float64) string { return fmt.Sprintf("%.0f calls/s", v) }
