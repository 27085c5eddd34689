package storage

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
	"time"
)

// openFileURL opens file:///abs/path (or file://relative/dir).
func openFileURL(_ context.Context, u *url.URL) (Storage, error) {
	p := u.Path
	if u.Host != "" && u.Host != "localhost" {
		p = u.Host + p
	}
	if p == "" {
		return nil, errors.New("storage: file URL without a path: use file:///path/to/folder")
	}
	return NewFileStore(p)
}

// FileStore keeps objects as files under a folder. Put writes to a
// temporary file, fsyncs it, renames it into place and fsyncs the folder.
// Folders are created once (and their entry in the parent fsynced) and
// remembered, so a Put into a known folder does no MkdirAll.
type FileStore struct {
	root string
	dirs sync.Map // folders known to exist, with a durable entry
}

// NewFileStore creates dir if needed and returns a FileStore on it.
func NewFileStore(dir string) (*FileStore, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("storage: create folder: %w", err)
	}
	s := &FileStore{root: abs}
	s.dirs.Store(abs, struct{}{})
	return s, nil
}

// ensureDir creates dir and its missing parents under the root, fsyncing
// each parent so that the new entry survives a crash, once per folder.
func (s *FileStore) ensureDir(dir string) error {
	if _, ok := s.dirs.Load(dir); ok {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent == dir || !strings.HasPrefix(dir, s.root) {
		return fmt.Errorf("storage: folder %q outside %q", dir, s.root)
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
func (s *FileStore) Root() string { return s.root }

func (s *FileStore) path(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put implements Storage.
func (s *FileStore) Put(ctx context.Context, key string, r io.Reader) (int64, string, error) {
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
func (s *FileStore) Open(_ context.Context, key string) (io.ReadSeekCloser, int64, error) {
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
func (s *FileStore) Delete(_ context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Check implements Checker: the folder exists and a file can be created
// in it.
func (s *FileStore) Check(context.Context) error {
	f, err := os.CreateTemp(s.root, ".check-*")
	if err != nil {
		return fmt.Errorf("storage: folder %s is not writable: %w", s.root, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// TempSweeper is implemented by storages that can remove abandoned
// temporary files (FileStore).
type TempSweeper interface {
	// SweepTemp removes temporary files last modified before before and
	// returns how many it removed.
	SweepTemp(ctx context.Context, before time.Time) (int, error)
}

// SweepTemp implements TempSweeper.
func (s *FileStore) SweepTemp(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == s.root {
				return err
			}
			return nil // a folder removed meanwhile: skip it
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.ModTime().Before(before) {
			return nil
		}
		if os.Remove(p) == nil {
			n++
		}
		return nil
	})
	return n, err
}
