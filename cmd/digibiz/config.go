package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/mydigibiz/digibiz/infra/postgres"
)

// Config is the server's configuration: flags, falling back to DIGIBIZ_* environment variables,
// falling back to defaults that work on a machine with PostgreSQL on 127.0.0.1:5432.
type Config struct {
	DatabaseURL string
	Addr        string
	DataDir     string
	MasterKey   string // from DIGIBIZ_MASTER_KEY only: never a flag, so it does not show in ps
	Bus         string
	WhatsApp    string
	LogLevel    string
	LogFormat   string
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// bindConfig adds the common flags to fs.
func bindConfig(fs *flag.FlagSet) *Config {
	c := &Config{MasterKey: os.Getenv("DIGIBIZ_MASTER_KEY")}
	fs.StringVar(&c.DatabaseURL, "database-url", env("DIGIBIZ_DATABASE_URL", postgres.DefaultURL), "PostgreSQL URL (DIGIBIZ_DATABASE_URL); the database is created if missing")
	fs.StringVar(&c.Addr, "addr", env("DIGIBIZ_ADDR", "127.0.0.1:8080"), "HTTP listen address (DIGIBIZ_ADDR)")
	fs.StringVar(&c.DataDir, "data-dir", env("DIGIBIZ_DATA_DIR", "./data"), "directory for local files (DIGIBIZ_DATA_DIR)")
	fs.StringVar(&c.Bus, "bus", env("DIGIBIZ_BUS", "postgres"), "message bus: postgres or nats (DIGIBIZ_BUS)")
	fs.StringVar(&c.WhatsApp, "whatsapp", env("DIGIBIZ_WHATSAPP", "simulator"), "WhatsApp gateway: whatsmeow or simulator (DIGIBIZ_WHATSAPP)")
	fs.StringVar(&c.LogLevel, "log-level", env("DIGIBIZ_LOG_LEVEL", "info"), "debug, info, warn or error (DIGIBIZ_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", env("DIGIBIZ_LOG_FORMAT", "text"), "text or json (DIGIBIZ_LOG_FORMAT)")
	return c
}

func (c *Config) validate() error {
	switch c.Bus {
	case "postgres", "nats":
	default:
		return fmt.Errorf("bus must be postgres or nats, not %q", c.Bus)
	}
	switch c.WhatsApp {
	case "whatsmeow", "simulator":
	default:
		return fmt.Errorf("whatsapp must be whatsmeow or simulator, not %q", c.WhatsApp)
	}
	return nil
}

func (c *Config) logger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.LogFormat, "json") {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
