package gateway

import (
	"context"

	"github.com/hourglasshq/hourglass/gateway/storage"
)

// Storage keeps job outputs and uploaded input files; see package storage
// (file://, s3://, gs://, azblob://).
type Storage = storage.Storage

// FileStorage is storage.FileStore, the default storage (a folder).
type FileStorage = storage.FileStore

// NewFileStorage creates dir if needed and returns a FileStorage on it.
func NewFileStorage(dir string) (*FileStorage, error) { return storage.NewFileStore(dir) }

// OpenStorage opens storage named by a URL (storage.Open).
func OpenStorage(rawURL string) (Storage, error) { return storage.Open(context.Background(), rawURL) }
