package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileStorage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenStorage("file://" + dir)
	if err != nil {
		t.Fatal(err)
	}
	data := strings.Repeat("hourglass ", 1000)
	size, sum, err := s.Put(ctx, "ten/job/0.mp4", strings.NewReader(data))
	want := sha256.Sum256([]byte(data))
	if err != nil || size != int64(len(data)) || sum != hex.EncodeToString(want[:]) {
		t.Fatalf("put: %d %s %v", size, sum, err)
	}
	f, n, err := s.Open(ctx, "ten/job/0.mp4")
	if err != nil || n != size {
		t.Fatalf("open: %d %v", n, err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != data {
		t.Fatal("content differs")
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Join(dir, "ten", "job"))
	if len(entries) != 1 {
		t.Fatalf("folder holds %d entries", len(entries))
	}
	if err := s.Delete(ctx, "ten/job/0.mp4"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "ten/job/0.mp4"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if _, _, err := s.Open(ctx, "ten/job/0.mp4"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open deleted: %v", err)
	}
	for _, bad := range []string{"", "../x", "a/../../x", "/abs", `a\b`, "a//b"} {
		if _, _, err := s.Put(ctx, bad, strings.NewReader("x")); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
	// A failed copy leaves nothing behind.
	if _, _, err := s.Put(ctx, "ten/job/1.mp4", io.MultiReader(strings.NewReader("part"), errReader{})); err == nil {
		t.Fatal("failed reader accepted")
	}
	if _, _, err := s.Open(ctx, "ten/job/1.mp4"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("partial object visible: %v", err)
	}
	if _, err := OpenStorage("s3://bucket"); err == nil {
		t.Fatal("s3 accepted before it exists")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestDialectPlaceholders(t *testing.T) {
	if got := dialectPostgres.q("a = ? AND b IN (?, ?)"); got != "a = $1 AND b IN ($2, $3)" {
		t.Fatal(got)
	}
	if got := dialectSQLite.q("a = ?"); got != "a = ?" {
		t.Fatal(got)
	}
	if got := redactURL("postgres://u:secret@h/db"); strings.Contains(got, "secret") {
		t.Fatal(got)
	}
}
