package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/jonboulle/clockwork"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
)

// Issue 11 item 12: orphan .tmp-* files of interrupted writes are swept at
// start; a fresh one (a write that may be running) is kept.
func TestOrphanTempFilesSweptAtStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sqlite://"+filepath.Join(t.TempDir(), "hg.db"), hopts{noStart: true})
	dir := filepath.Join(h.storage.Root(), "ten_default", "zz")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	old, fresh := filepath.Join(dir, ".tmp-123"), filepath.Join(dir, ".tmp-456")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("partial download"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old, hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	h.start()
	waitFor(t, "the old temporary file swept", func() bool { _, err := os.Stat(old); return errors.Is(err, os.ErrNotExist) })
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("a fresh temporary file (a running write) was removed: %v", err)
	}
}

// Issue 11 item 12: a zero-length database with other state beside it and
// a database with corrupt pages are refused at start with a clear message;
// a zero-length file alone is a first start.
func TestDamagedSQLiteRefusedAtStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("empty with state beside it", func(t *testing.T) {
		dir := t.TempDir()
		db := filepath.Join(dir, "hourglass.db")
		os.WriteFile(db, nil, 0o640)
		os.MkdirAll(filepath.Join(dir, "outputs"), 0o750)
		_, err := gateway.OpenStore(ctx, "sqlite://"+db)
		if !errors.Is(err, gateway.ErrDamagedDatabase) || !strings.Contains(err.Error(), "is empty") || !strings.Contains(err.Error(), "outputs") {
			t.Fatalf("OpenStore on a truncated database: %v, want ErrDamagedDatabase naming the file and the state beside it", err)
		}
	})
	t.Run("empty alone is a first start", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "hourglass.db")
		os.WriteFile(db, nil, 0o640)
		s, err := gateway.OpenStore(ctx, "sqlite://"+db)
		if err != nil {
			t.Fatalf("OpenStore on a new empty file: %v", err)
		}
		s.Close()
	})
	t.Run("corrupt pages", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "hourglass.db")
		s, err := gateway.OpenStore(ctx, "sqlite://"+db)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 300 {
			if _, _, err := gateway.CreateTenant(ctx, s, fmt.Sprintf("tenant-%03d-%s", i, strings.Repeat("x", 100)), nil); err != nil {
				t.Fatal(err)
			}
		}
		s.Close() // checkpoints the WAL into the file
		b, err := os.ReadFile(db)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 8*4096 {
			t.Fatalf("database only %d bytes", len(b))
		}
		// Garbage over every page but the first (the header and schema root).
		copy(b[4096:], bytes.Repeat([]byte{0xA5, 0x5A, 0xFF, 0x00}, (len(b)-4096)/4))
		if err := os.WriteFile(db, b, 0o640); err != nil {
			t.Fatal(err)
		}
		_, err = gateway.OpenStore(ctx, "sqlite://"+db)
		if !errors.Is(err, gateway.ErrDamagedDatabase) || !strings.Contains(err.Error(), "refusing to run") {
			t.Fatalf("OpenStore on corrupt pages: %v, want ErrDamagedDatabase", err)
		}
	})
}

// Issue 11 item 12: uploads no pending job needs are deleted after
// UploadTTL (row and stored bytes); one a pending job refers to is kept.
func TestUnusedUploadsCleanedUp(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		// A fake clock: the uploads are only as old as the test says, however
		// slowly the machine runs (on the wall clock the used upload could
		// pass its TTL before the job that needs it is submitted).
		clock := clockwork.NewFakeClock()
		h := newHarness(t, dbURL, hopts{workers: -1, cfg: func(c *gateway.Config) {
			c.Clock = clock
			c.UploadTTL, c.CleanupInterval = time.Hour, time.Minute
		}})
		file := append(append([]byte{}, pngHead...), bytes.Repeat([]byte{7}, 500)...)
		var used, unused struct {
			ID       string `json:"id"`
			FilePath string `json:"file_path"`
		}
		for _, u := range []*struct {
			ID       string `json:"id"`
			FilePath string `json:"file_path"`
		}{&used, &unused} {
			if code, raw := h.do("POST", "/api/uploads?extension=png", h.tenantKey, file, u); code != http.StatusCreated {
				t.Fatalf("upload: %d %s", code, raw)
			}
		}
		p := params(t, "ai-image-upscaler", "")
		p["assets"] = map[string]any{"image_file_path": used.FilePath}
		if code, raw := h.do("POST", "/api/jobs", h.tenantKey, map[string]any{"tool": "ai-image-upscaler", "params": p}, nil); code != http.StatusAccepted {
			t.Fatalf("submit: %d %s", code, raw)
		}
		waitFor(t, "the unused upload deleted", func() bool {
			clock.Advance(time.Minute) // ticks the clean-up; both uploads pass their TTL
			return countRows(t, h.store, "uploads") == 1
		})
		if _, err := h.store.Upload(context.Background(), "", used.ID); err != nil {
			t.Fatalf("the upload a pending job needs was deleted: %v", err)
		}
		files := 0
		filepath.WalkDir(filepath.Join(h.storage.Root(), "uploads"), func(_ string, d os.DirEntry, _ error) error {
			if d != nil && !d.IsDir() {
				files++
			}
			return nil
		})
		if files != 1 {
			t.Fatalf("%d upload files in storage, want 1", files)
		}
	})
}
