package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Storage keeps job outputs. Keys are slash-separated relative paths
// ("<tenant>/<job>/0.mp4"). Implementations must make Put atomic: a key is
// either absent or holds the complete object.
type Storage interface {
	// Put streams r to key, replacing any object there, and returns its
	// size and hex sha256.
	Put(ctx context.Context, key string, r io.Reader) (size int64, sha string, err error)
	// Open returns the object and its size; ErrNotFound when absent.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error)
	// Delete removes an object; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
}

// OpenStorage opens storage named by a URL: file:///abs/path, or a plain
// folder path. S3-compatible storage (s3://bucket) comes later.
func OpenStorage(rawURL string) (Storage, error) {
	if rawURL == "" {
		return nil, errors.New("gateway: empty storage URL")
	}
	if !strings.Contains(rawURL, "://") {
		return NewFileStorage(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("gateway: storage URL: %w", err)
	}
	switch u.Scheme {
	case "file":
		p := u.Path
		if u.Host != "" && u.Host != "localhost" {
			p = u.Host + p // file://relative/dir
		}
		return NewFileStorage(p)
	}
	return nil, fmt.Errorf("gateway: unsupported storage %q: use file:///path (s3:// is not supported yet)", u.Scheme)
}

// FileStorage keeps objects as files under a folder. Put writes to a
// temporary file, fsyncs it, renames it into place and fsyncs the folder.
// Folders are created once (and their entry in the parent fsynced) and
// remembered, so a Put into a known folder does no MkdirAll.
type FileStorage struct {
	root string
	dirs sync.Map // folders known to exist, with a durable entry
}

// NewFileStorage creates dir if needed and returns a FileStorage on it.
func NewFileStorage(dir string) (*FileStorage, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("gateway: create storage folder: %w", err)
	}
	s := &FileStorage{root: abs}
	s.dirs.Store(abs, struct{}{})
	return s, nil
}

// ensureDir creates dir and its missing parents under the root, fsyncing
// each parent so that the new entry survives a crash, once per folder.
func (s *FileStorage) ensureDir(dir string) error {
	if _, ok := s.dirs.Load(dir); ok {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent == dir || !strings.HasPrefix(dir, s.root) {
		return fmt.Errorf("gateway: storage folder %q outside %q", dir, s.root)
	}
	if err := s.ensureDir(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	syncDir(parent)
	s.dirs.Store(dir, struct{}{})
	return nil
}

// syncDir makes the entries of a folder durable; best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Root returns the folder.
func (s *FileStorage) Root() string { return s.root }

func (s *FileStorage) path(key string) (string, error) {
	clean := filepath.Clean("/" + key)
	if key == "" || clean == "/" || strings.Contains(key, "\\") || clean != "/"+key {
		return "", fmt.Errorf("gateway: invalid storage key %q", key)
	}
	return filepath.Join(s.root, filepath.FromSlash(clean)), nil
}

// Put implements Storage.
func (s *FileStorage) Put(ctx context.Context, key string, r io.Reader) (int64, string, error) {
	dst, err := s.path(key)
	if err != nil {
		return 0, "", err
	}
	dir := filepath.Dir(dst)
	if err := s.ensureDir(dir); err != nil {
		return 0, "", err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if errors.Is(err, fs.ErrNotExist) {
		// Removed behind our back: forget it and create it again.
		s.dirs.Delete(dir)
		if err := s.ensureDir(dir); err != nil {
			return 0, "", err
		}
		f, err = os.CreateTemp(dir, ".tmp-*")
	}
	if err != nil {
		return 0, "", err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err != nil {
		return 0, "", err
	}
	if err := f.Sync(); err != nil {
		return 0, "", err
	}
	if err := f.Close(); err != nil {
		return 0, "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return 0, "", err
	}
	ok = true
	syncDir(dir) // make the rename durable

	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// Open implements Storage.
func (s *FileStorage) Open(_ context.Context, key string) (io.ReadSeekCloser, int64, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, ErrNotFound
		}
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// Delete implements Storage.
func (s *FileStorage) Delete(_ context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
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
