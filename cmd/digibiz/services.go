package main

import (
	"context"
	"errors"
	"log/slog"
)

// A service is background work of the server: the projections, the live feed's forwarder, the
// importer, the janitors. Services are started in the order of their list and stopped in reverse,
// each after the ones started after it (which may use it) have ended. A service that returns
// early is logged; the others go on.
type service struct {
	name string
	run  func(ctx context.Context) error
}

type runningService struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
}

// services runs a list of services with one lifecycle.
type services struct {
	logger  *slog.Logger
	running []runningService
}

// start starts each service in order, on a context of its own.
func (s *services) start(list []service) {
	for _, svc := range list {
		ctx, cancel := context.WithCancel(context.Background())
		r := runningService{name: svc.name, cancel: cancel, done: make(chan struct{})}
		s.running = append(s.running, r)
		go func() {
			defer close(r.done)
			if err := svc.run(ctx); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				s.logger.Error("background service stopped", "service", svc.name, "err", err)
			}
		}()
	}
}

// stop stops the services in reverse order, each waited for before the next is stopped.
func (s *services) stop() {
	for i := len(s.running) - 1; i >= 0; i-- {
		s.running[i].cancel()
		<-s.running[i].done
	}
	s.running = nil
}
