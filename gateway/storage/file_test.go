package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hourglasshq/hourglass/gateway/storage"
	"github.com/hourglasshq/hourglass/gateway/storage/storagetest"
)

func TestFileStoreConformance(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := storage.Open(context.Background(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	storagetest.Run(t, s, "ten")
	// No temporary files are left behind, even by the failed puts.
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenURLs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	for _, u := range []string{dir, "file://" + dir} {
		s, err := storage.Open(ctx, u)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if _, ok := s.(*storage.FileStore); !ok {
			t.Fatalf("%s: %T", u, s)
		}
	}
	for _, bad := range []string{"", "ftp://x/y", "file://", "s3://"} {
		if _, err := storage.Open(ctx, bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got := storage.Redact("s3://b?endpoint=http://127.0.0.1:1&secret_key=abc"); strings.Contains(got, "abc") {
		t.Errorf("redact: %s", got)
	}
	if got := storage.Default().Schemes(); strings.Join(got, ",") != "azblob,file,gs,s3" {
		t.Errorf("schemes: %v", got)
	}
}

func TestFileStoreCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := storage.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("check on a removed folder: %v", err)
	}
}
