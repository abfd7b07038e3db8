package whatsapp

import (
	"log/slog"

	signallog "go.mau.fi/libsignal/logger"
)

// libsignal (under whatsmeow) sets up its logger lazily on first use, unguarded, which races when
// two devices are made at once (two pairings): set it up here, before any goroutine can, with
// one that keeps the library's debug chatter out of our logs.
func init() {
	var l signallog.Loggable = signalLogger{}
	signallog.Setup(&l)
}

type signalLogger struct{}

func (signalLogger) Debug(caller, message string) {}
func (signalLogger) Info(caller, message string)  {}
func (signalLogger) Warning(caller, message string) {
	slog.Warn("libsignal: "+message, "caller", caller)
}
func (signalLogger) Error(caller, message string) {
	slog.Error("libsignal: "+message, "caller", caller)
}
func (signalLogger) Configure(settings string) {}
