package storage

import (
	"context"
	"net/url"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob:// on blob's URL mux
	_ "gocloud.dev/blob/gcsblob"   // gs:// on blob's URL mux
)

// openCloudBucket opens gs:// (Google Cloud Storage; Application Default
// Credentials) and azblob:// (Azure Blob Storage; AZURE_STORAGE_ACCOUNT
// with AZURE_STORAGE_KEY, a SAS token or default credentials) with the
// drivers' own lazy-credential URL openers. Both are registered and
// documented but untested here: no server for them runs in CI.
func openCloudBucket(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
	return blob.OpenBucket(ctx, u.String())
}
