package main

import (
	"fmt"
	"os"
	"runtime/metrics"
)

// runtimeDiag prints, for diagnosis (DIGIBIZ_ABUSE_DIAG), the runtime's scheduling latencies and
// garbage collections since the last call.
type runtimeDiag struct{ last []metrics.Sample }

func (d *runtimeDiag) print(label string) {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}, {Name: "/gc/cycles/total:gc-cycles"}, {Name: "/sched/pauses/total/gc:seconds"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if d.last != nil {
		lat := diffHist(s[0].Value.Float64Histogram(), d.last[0].Value.Float64Histogram())
		pause := diffHist(s[2].Value.Float64Histogram(), d.last[2].Value.Float64Histogram())
		fmt.Fprintf(os.Stderr, "%s: gc cycles %d, allocated %d MB, sched latency p50 %s p99 %s p999 %s, gc pause p99 %s max %s\n", label,
			s[1].Value.Uint64()-d.last[1].Value.Uint64(), (s[3].Value.Uint64()-d.last[3].Value.Uint64())>>20,
			q(lat, 0.5), q(lat, 0.99), q(lat, 0.999), q(pause, 0.99), q(pause, 1))
	}
	d.last = s
	d.last[0].Value = metrics.Value{}
	metrics.Read(d.last)
}

type hist struct {
	counts  []uint64
	buckets []float64
}

func diffHist(a, b *metrics.Float64Histogram) hist {
	h := hist{counts: make([]uint64, len(a.Counts)), buckets: a.Buckets}
	for i := range a.Counts {
		h.counts[i] = a.Counts[i] - b.Counts[i]
	}
	return h
}

func q(h hist, p float64) string {
	var total uint64
	for _, c := range h.counts {
		total += c
	}
	if total == 0 {
		return "-"
	}
	want := uint64(p * float64(total))
	var acc uint64
	for i, c := range h.counts {
		acc += c
		if acc >= want && c > 0 {
			return fmt.Sprintf("%.1fms", h.buckets[i+1]*1000)
		}
	}
	return "?"
}
