package main

import (
	"os"
	"runtime/debug"
)

// Garbage collection of the server, unless GOGC or GOMEMLIMIT says otherwise: a collection when
// the heap has grown to five times what was live (GOGC=400) rather than twice, with a soft limit
// of 1 GiB past which the collector works harder. The server's live heap is small (tens of MB)
// and what it allocates is short-lived (documents, pages, replayed events), so Go's default
// collected tens of times a second under load, and each collection stalls requests: under the
// abuse bench, tenant B's p99 fell by half with this setting, resident memory stayed under
// 320 MB (docs/BENCHMARKS.md).
const (
	serverGCPercent   = 400
	serverMemoryLimit = 1 << 30
)

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serverMemoryLimit)
	}
}
