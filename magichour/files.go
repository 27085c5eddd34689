package magichour

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// FilesService uploads input files to Magic Hour's storage. An upload asks
// POST /v1/files/upload-urls for a pre-signed URL, streams the bytes to it
// with a PUT (without the API key), and returns the file path
// ("api-assets/...") to pass in a create request's assets.
type FilesService struct{ c *Client }

// UploadItem asks for one upload URL.
type UploadItem struct {
	Type      string `json:"type"`      // "image", "video" or "audio"
	Extension string `json:"extension"` // without the dot, e.g. "png"
}

// UploadURL is a pre-signed upload target.
type UploadURL struct {
	// UploadURL receives the file's bytes with a PUT. It embeds a credential:
	// do not log it.
	UploadURL string    `json:"upload_url"`
	ExpiresAt time.Time `json:"expires_at"`
	// FilePath names the file in create requests ("api-assets/...").
	FilePath string `json:"file_path"`
}

// String shows the target without the URL's signed query.
// uploadParallelism bounds the PUTs of one UploadMany call.
const uploadParallelism = 4

func (u UploadURL) String() string {
	return fmt.Sprintf("UploadURL{FilePath: %q, URL: %s, ExpiresAt: %s}", u.FilePath, stripQuery(u.UploadURL), u.ExpiresAt.Format(time.RFC3339))
}

func stripQuery(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// UploadOption configures an upload.
type UploadOption func(*uploadConfig)

type uploadConfig struct {
	progress func(done, total int64)
}

// WithUploadProgress calls fn as bytes are sent: done grows to total (the
// sum of the sizes of every file of the call). After a retried PUT, done
// may go back. Calls are serialized.
func WithUploadProgress(fn func(done, total int64)) UploadOption {
	return func(c *uploadConfig) { c.progress = fn }
}

// UploadURLs requests pre-signed upload URLs, one per item, in order:
// POST /v1/files/upload-urls. Most callers want Upload or UploadMany.
func (s *FilesService) UploadURLs(ctx context.Context, items ...UploadItem) ([]UploadURL, error) {
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: UploadURLs: no items", ErrInvalidRequest)
	}
	for i, it := range items {
		items[i].Extension = strings.ToLower(strings.TrimPrefix(it.Extension, "."))
	}
	op := catalog.Lookup("files.upload-urls")
	body, err := s.c.marshalBody(op, struct {
		Items []UploadItem `json:"items"`
	}{items})
	if err != nil {
		return nil, err
	}
	var out struct {
		Items []UploadURL `json:"items"`
	}
	if err := s.c.doJSON(ctx, request{method: http.MethodPost, path: op.Path, body: body}, &out); err != nil {
		return nil, err
	}
	if len(out.Items) != len(items) {
		return nil, fmt.Errorf("magichour: POST %s: asked for %d upload URLs, got %d", op.Path, len(items), len(out.Items))
	}
	return out.Items, nil
}

// Upload uploads the local file at path and returns its file path for
// create requests. The type (image, video, audio) comes from the extension;
// an extension the API does not accept gives ErrUnsupportedFile, and a
// missing or unreadable file an error, both before any API call. The file
// is streamed (constant memory) and the PUT is retried on network errors,
// 429 and 5xx by reopening the file.
func (s *FilesService) Upload(ctx context.Context, path string, opts ...UploadOption) (string, error) {
	paths, err := s.UploadMany(ctx, []string{path}, opts...)
	if err != nil {
		return "", err
	}
	return paths[0], nil
}

// UploadMany uploads several local files with a single upload-urls call and
// returns their file paths in order. Every file is checked before the call.
// Files are sent concurrently (at most 4 at a time); the first failure
// cancels the rest.
func (s *FilesService) UploadMany(ctx context.Context, paths []string, opts ...UploadOption) ([]string, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: UploadMany: no files", ErrInvalidRequest)
	}
	cfg := uploadConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	items := make([]UploadItem, len(paths))
	sizes := make([]int64, len(paths))
	var total int64
	for i, p := range paths {
		item, size, err := checkLocalFile(p)
		if err != nil {
			return nil, err
		}
		items[i], sizes[i] = item, size
		total += size
	}
	urls, err := s.UploadURLs(ctx, items...)
	if err != nil {
		return nil, err
	}
	prog := newProgress(cfg.progress, total, len(paths))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := forEach(ctx, len(paths), uploadParallelism, func(ctx context.Context, i int) error {
		open := func() (io.ReadCloser, error) { return os.Open(paths[i]) }
		if err := s.c.put(ctx, urls[i].UploadURL, open, sizes[i], func(n int64) { prog.set(i, n) }); err != nil {
			cancel() // one failed upload fails the batch: stop the others
			return fmt.Errorf("magichour: upload %s: %w", paths[i], err)
		}
		return nil
	})
	// Report the first real failure rather than the cancellations it caused.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = u.FilePath
	}
	return out, nil
}

// UploadReader uploads size bytes read from r as a file with extension ext
// ("png", ".mp4"). When r is an io.Seeker a failed PUT is retried from the
// reader's current offset; otherwise it is sent once.
func (s *FilesService) UploadReader(ctx context.Context, r io.Reader, size int64, ext string, opts ...UploadOption) (string, error) {
	if r == nil {
		return "", fmt.Errorf("%w: UploadReader: nil reader", ErrInvalidRequest)
	}
	if size < 0 {
		return "", fmt.Errorf("%w: UploadReader: negative size %d", ErrInvalidRequest, size)
	}
	item, err := itemFor(ext, "reader")
	if err != nil {
		return "", err
	}
	cfg := uploadConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	urls, err := s.UploadURLs(ctx, item)
	if err != nil {
		return "", err
	}
	var open func() (io.ReadCloser, error)
	if sk, ok := r.(io.Seeker); ok {
		start, err := sk.Seek(0, io.SeekCurrent)
		if err != nil {
			return "", fmt.Errorf("magichour: UploadReader: %w", err)
		}
		open = func() (io.ReadCloser, error) {
			if _, err := sk.Seek(start, io.SeekStart); err != nil {
				return nil, err
			}
			return io.NopCloser(r), nil
		}
	} else {
		used := false
		open = func() (io.ReadCloser, error) {
			if used {
				return nil, errNoRewind
			}
			used = true
			return io.NopCloser(r), nil
		}
	}
	prog := newProgress(cfg.progress, size, 1)
	if err := s.c.put(ctx, urls[0].UploadURL, open, size, func(n int64) { prog.set(0, n) }); err != nil {
		return "", fmt.Errorf("magichour: upload: %w", err)
	}
	return urls[0].FilePath, nil
}

var errNoRewind = errors.New("the reader cannot be rewound for a retry (pass an io.Seeker)")

// checkLocalFile verifies that path is a readable regular file with a
// supported extension.
func checkLocalFile(path string) (UploadItem, int64, error) {
	item, err := itemFor(filepath.Ext(path), path)
	if err != nil {
		return UploadItem{}, 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return UploadItem{}, 0, fmt.Errorf("magichour: upload %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return UploadItem{}, 0, fmt.Errorf("magichour: upload %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return UploadItem{}, 0, fmt.Errorf("magichour: upload %s: not a regular file", path)
	}
	return item, st.Size(), nil
}

func itemFor(ext, name string) (UploadItem, error) {
	ext = strings.ToLower(strings.TrimPrefix(ext, "."))
	media := catalog.MediaOfExtension(ext)
	if media == "" {
		if ext == "" {
			return UploadItem{}, fmt.Errorf("%w: %s has no file extension; accepted: %s", ErrUnsupportedFile, name, acceptedExtensions())
		}
		return UploadItem{}, fmt.Errorf("%w: %s has extension %q; accepted: %s", ErrUnsupportedFile, name, ext, acceptedExtensions())
	}
	return UploadItem{Type: media, Extension: ext}, nil
}

func acceptedExtensions() string {
	media := make([]string, 0, len(catalog.Extensions))
	for m := range catalog.Extensions {
		media = append(media, m)
	}
	sort.Strings(media)
	parts := make([]string, len(media))
	for i, m := range media {
		parts[i] = m + " (" + strings.Join(catalog.Extensions[m], ", ") + ")"
	}
	return strings.Join(parts, "; ")
}

// put streams size bytes from open() to a pre-signed URL with a PUT,
// without the API key, retrying network errors, 429 and 5xx by calling open
// again. progress receives the bytes sent by the current attempt.
func (c *Client) put(ctx context.Context, url string, open func() (io.ReadCloser, error), size int64, progress func(int64)) error {
	label := stripQuery(url)
	maxAttempts := max(c.retry.MaxAttempts, 1)
	var lastErr error
	for attempt := 1; ; attempt++ {
		body, err := open()
		if err != nil {
			if lastErr != nil {
				return fmt.Errorf("PUT %s: %w; not retried: %w", label, lastErr, err)
			}
			return err
		}
		progress(0)
		retryAfter, err := c.putOnce(ctx, url, label, &countingReader{r: body, fn: progress}, size)
		body.Close()
		if err == nil {
			return nil
		}
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			apiErr.Attempts = attempt
		}
		if ctx.Err() != nil || attempt >= maxAttempts || (apiErr != nil && !apiErr.Temporary()) {
			return err
		}
		lastErr = err
		delay := c.backoff(attempt, retryAfter)
		c.logger.Log(ctx, retryLogLevel(0), "magichour: retrying upload",
			"method", http.MethodPut, "path", label, "attempt", attempt, "delay", delay, "err", err.Error())
		if err := sleepCtx(ctx, delay); err != nil {
			return fmt.Errorf("PUT %s: stopped retrying: %w (last error: %w)", label, err, lastErr)
		}
	}
}

// putOnce sends one PUT. The upload URL is pre-signed: no Authorization
// header is sent. The per-request timeout does not apply (large files);
// the context and the transport's timeouts do.
func (c *Client) putOnce(ctx context.Context, url, label string, body io.Reader, size int64) (retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, body)
	if err != nil {
		return 0, fmt.Errorf("PUT %s: %w", label, err)
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("User-Agent", c.ua)
	resp, err := c.hc.Do(req)
	if err != nil {
		// *url.Error would print the signed URL: keep only the cause.
		var uerr *neturl.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return 0, fmt.Errorf("PUT %s: %w", label, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return 0, nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), newAPIError(http.MethodPut, label, resp, b)
}

// countingReader reports the running count of bytes read.
type countingReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
		c.fn(c.n)
	}
	return n, err
}

// progress aggregates per-file byte counts into one serialized callback.
type progress struct {
	mu    sync.Mutex
	fn    func(done, total int64)
	total int64
	per   []int64
	done  int64
}

func newProgress(fn func(done, total int64), total int64, n int) *progress {
	return &progress{fn: fn, total: total, per: make([]int64, n)}
}

func (p *progress) set(i int, n int64) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n - p.per[i]
	p.per[i] = n
	p.fn(p.done, p.total)
}
