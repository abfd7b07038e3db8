package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
)

// A service is background work of the server: the projections, the live feed's forwarder, the
// importer, the janitors. Services are started in the order of their list and stopped in reverse,
// each after the ones started after it (which may use it) have ended. A service that returns
// early is logged; the others go on, and readiness reports it.
type service struct {
	name string
	run  func(ctx context.Context) error
	// ready, when set, says whether the running service can do its work now (the bus: its
	// router runs). Unset: ready while it runs.
	ready func() error
}

type runningService struct {
	service
	cancel context.CancelFunc
	done   chan struct{}
	// err is why the service ended; read after done is closed.
	err error
}

// errStopped is the readiness of a service that ended.
var errStopped = errors.New("stopped")

// serviceState is one service's readiness: Err is nil when ready.
type serviceState struct {
	Name string
	Err  error
}

// services runs a list of services with one lifecycle.
type services struct {
	logger  *slog.Logger
	mu      sync.Mutex
	running []*runningService
}

// start starts each service in order, on a context of its own.
func (s *services) start(list []service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, svc := range list {
		ctx, cancel := context.WithCancel(context.Background())
		r := &runningService{service: svc, cancel: cancel, done: make(chan struct{})}
		s.running = append(s.running, r)
		go func() {
			defer close(r.done)
			err := svc.run(ctx)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				err = errors.New("it returned")
			}
			r.err = err
			if !errors.Is(err, context.Canceled) {
				s.logger.Error("background service stopped", "service", svc.name, "err", err)
			}
		}()
	}
}

// stop stops the services in reverse order, each waited for before the next is stopped.
func (s *services) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.running) - 1; i >= 0; i-- {
		s.running[i].cancel()
		<-s.running[i].done
	}
	s.running = nil
}

// states reports each service's readiness, in start order. A service that ended is not ready.
func (s *services) states() []serviceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]serviceState, 0, len(s.running))
	for _, r := range s.running {
		st := serviceState{Name: r.name}
		select {
		case <-r.done:
			st.Err = errStopped // why is in the log
		default:
			if r.ready != nil {
				st.Err = r.ready()
			}
		}
		out = append(out, st)
	}
	return out
}
