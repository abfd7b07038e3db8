package accesslog

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkWriterRecord measures what the request path pays to log a request. Every
// BatchSize records the buffer is taken away and recycled as Flush does (without the I/O), in
// the same goroutine so the figure does not depend on scheduling; the swap's cost is included.
func BenchmarkWriterRecord(b *testing.B) {
	reg := prometheus.NewRegistry()
	w := NewWriter(nil, WriterOpts{Registerer: reg})
	e := sampleEntry(uuid.New(), 1, 1, time.Now())
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		w.Record(e)
		if i%w.opts.BatchSize == w.opts.BatchSize-1 {
			w.recycle(w.take())
		}
	}
	b.StopTimer()
	b.ReportMetric(metricValue(b, reg, "digibiz_access_log_dropped_total")/float64(b.N), "dropped/op")
}

// BenchmarkWriterRecordParallel calls Record from GOMAXPROCS goroutines at once, as concurrent
// requests would, with a drainer goroutine standing in for Run; it shows the cost of contention
// on the buffer's mutex. It is noisier than BenchmarkWriterRecord: when the drainer is
// scheduled late the buffer outgrows its recycled array and appends reallocate.
func BenchmarkWriterRecordParallel(b *testing.B) {
	reg := prometheus.NewRegistry()
	w := NewWriter(nil, WriterOpts{Registerer: reg})
	stop := drain(w)
	defer stop()
	e := sampleEntry(uuid.New(), 1, 1, time.Now())
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Record(e)
		}
	})
	b.StopTimer()
	b.ReportMetric(metricValue(b, reg, "digibiz_access_log_dropped_total")/float64(b.N), "dropped/op")
}

// drain stands in for Run without the I/O: it takes the buffer away when Record signals that a
// batch is waiting, or every 10ms, and recycles it as Flush does.
func drain(w *Writer) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			case <-w.wake:
			}
			w.recycle(w.take())
		}
	}()
	return func() { close(done); <-finished }
}
