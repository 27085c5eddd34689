package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hourglasshq/hourglass/gateway/storage"
)

// Defaults of a gateway's Config: one set, used by New, Open, `hourglass
// serve`'s flags, the benches and the tests.
const (
	DefaultWorkers         = 8
	DefaultCallbackWorkers = 4
	DefaultLeaseDuration   = 30 * time.Second
	DefaultUpstreamRPS     = 10
	DefaultMaxBodyBytes    = 1 << 20
	DefaultMaxUploadBytes  = 1 << 30
	DefaultShutdownGrace   = 10 * time.Second
)

// Options configure Open: the Config of New, plus where the state lives
// when Config.Store or Config.Storage is not given.
type Options struct {
	Config
	// DB is the database URL, sqlite://path or postgres://... (used when
	// Config.Store is nil; the gateway then owns and closes the store).
	DB string
	// StorageURL is where outputs and uploads go (used when
	// Config.Storage is nil): file://dir or a directory, s3://bucket?...,
	// gs://, azblob:// (see package storage).
	StorageURL string
}

// BootstrapKeys are the keys of a database's first start (shown once,
// stored hashed); empty on a database already bootstrapped.
type BootstrapKeys struct {
	AdminKey, TenantKey string
	Created             bool
}

// Open is the gateway's composition root: it opens the store (migrated)
// and the storage named in o unless given, bootstraps the database's first
// keys, and starts the gateway (New). Close stops it and closes what Open
// opened. `hourglass serve`, the benches and the test harnesses use it.
func Open(ctx context.Context, o Options) (*Gateway, error) {
	cfg := o.Config
	if cfg.Upstream == nil {
		return nil, errors.New("gateway: Options need an Upstream client")
	}
	var closers []func() error
	fail := func(err error) (*Gateway, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
		return nil, err
	}
	if cfg.Store == nil {
		if o.DB == "" {
			return nil, errors.New("gateway: Options need a DB URL or a Store")
		}
		var sopts []StoreOption
		if cfg.Clock != nil {
			sopts = append(sopts, WithStoreClock(cfg.Clock))
		}
		s, err := OpenStore(ctx, o.DB, sopts...)
		if err != nil {
			return nil, err
		}
		cfg.Store = s
		closers = append(closers, s.Close)
	}
	if cfg.Storage == nil {
		if o.StorageURL == "" {
			return fail(errors.New("gateway: Options need a StorageURL or a Storage"))
		}
		st, err := storage.Open(ctx, o.StorageURL)
		if err != nil {
			return fail(fmt.Errorf("gateway: storage %s: %w", storage.Redact(o.StorageURL), err))
		}
		if c, ok := st.(storage.Closer); ok {
			closers = append(closers, c.Close)
		}
		checkStorageAtStart(ctx, st, cfg.Logger)
		cfg.Storage = st
	}
	admin, tenant, created, err := Bootstrap(ctx, cfg.Store)
	if err != nil {
		return fail(fmt.Errorf("gateway: bootstrap keys: %w", err))
	}
	g, err := New(cfg)
	if err != nil {
		return fail(err)
	}
	g.keys = BootstrapKeys{AdminKey: admin, TenantKey: tenant, Created: created}
	g.closers = closers
	return g, nil
}

// Keys returns the keys Open's bootstrap created (Created false when the
// database had them already).
func (g *Gateway) Keys() BootstrapKeys { return g.keys }

// MaxUploadBytes is the limit of one uploaded input file
// (Config.MaxUploadBytes), which the dashboard's forms follow too.
func (g *Gateway) MaxUploadBytes() int64 { return g.cfg.MaxUploadBytes }
