// Package storage keeps the gateway's objects (job outputs, uploaded input
// files) behind one interface, opened from a URL:
//
//	file:///var/lib/hourglass/outputs   a folder (the default; see FileStore)
//	s3://bucket?region=...&endpoint=...&use_path_style=true
//	gs://bucket, azblob://container      (registered, untested)
//
// Every implementation streams Put (it never holds a whole object in
// memory), hashes what it writes, and makes it atomic: a key is absent or
// holds the complete object. Open supports seeking, so HTTP Range requests
// read only what they need. The conformance suite in storagetest checks
// all of that against any implementation.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"
)

// ErrNotFound is returned by Open for a key that holds no object.
var ErrNotFound = errors.New("storage: object not found")

// Storage keeps objects under slash-separated relative keys
// ("<tenant>/<shard>/<job>-0.mp4"). Implementations are safe for
// concurrent use.
type Storage interface {
	// Put streams r to key, replacing any object there, and returns its
	// size and hex sha256. On error nothing is left at key (an object
	// that was there before may be left as it was).
	Put(ctx context.Context, key string, r io.Reader) (size int64, sha string, err error)
	// Open returns the object and its size; ErrNotFound when absent.
	// Seeking is cheap: a read after a seek fetches from that offset.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error)
	// Delete removes an object; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
}

// Checker is implemented by storage that can tell whether it is usable:
// Check returns an error naming what is wrong (no such bucket, access
// denied, endpoint unreachable, folder not writable).
type Checker interface {
	Check(ctx context.Context) error
}

// Presigner is implemented by storage whose objects can be fetched
// directly by clients with a short-lived signed URL.
type Presigner interface {
	PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error)
}

// Closer is implemented by storage holding connections to release.
type Closer interface {
	Close() error
}

// Opener opens storage from a parsed URL of its scheme.
type Opener func(ctx context.Context, u *url.URL) (Storage, error)

// Registry maps URL schemes to Openers.
type Registry struct {
	openers map[string]Opener
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{openers: map[string]Opener{}} }

// Default returns a Registry with the built-in schemes: file, s3, gs and
// azblob.
func Default() *Registry {
	r := NewRegistry()
	r.Register("file", openFileURL)
	r.Register("s3", openBlobURL)
	r.Register("gs", openBlobURL)
	r.Register("azblob", openBlobURL)
	return r
}

// Register makes scheme open with o (replacing any opener it had).
func (r *Registry) Register(scheme string, o Opener) { r.openers[strings.ToLower(scheme)] = o }

// Schemes lists the registered schemes, sorted.
func (r *Registry) Schemes() []string {
	out := make([]string, 0, len(r.openers))
	for s := range r.openers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Open opens the storage named by rawURL. A value without "://" is a
// folder path (file storage).
func (r *Registry) Open(ctx context.Context, rawURL string) (Storage, error) {
	if rawURL == "" {
		return nil, errors.New("storage: empty URL")
	}
	if !strings.Contains(rawURL, "://") {
		return NewFileStore(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("storage: URL: %w", err)
	}
	o, ok := r.openers[strings.ToLower(u.Scheme)]
	if !ok {
		return nil, fmt.Errorf("storage: unsupported scheme %q in %s (want one of %s)", u.Scheme, Redact(rawURL), strings.Join(r.Schemes(), ", "))
	}
	return o(ctx, u)
}

// Open opens rawURL with the Default registry.
func Open(ctx context.Context, rawURL string) (Storage, error) { return Default().Open(ctx, rawURL) }

// Redact hides credentials that a storage URL may carry (user info and
// secret-looking query parameters), for messages.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable storage URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	redacted := false
	for k := range q {
		lk := strings.ToLower(k)
		if strings.Contains(lk, "secret") || strings.Contains(lk, "key") || strings.Contains(lk, "token") || strings.Contains(lk, "password") || lk == "sig" {
			q.Set(k, "xxxxx")
			redacted = true
		}
	}
	if redacted {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// CheckKey reports whether key is a clean relative slash-separated path
// (no "..", no empty or absolute segments, no backslash).
func CheckKey(key string) error {
	if key == "" || strings.Contains(key, "\\") || strings.HasPrefix(key, "/") || path.Clean("/"+key) != "/"+key {
		return fmt.Errorf("storage: invalid key %q", key)
	}
	return nil
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
