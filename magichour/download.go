package magichour

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	neturl "net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Download defaults.
const (
	// DefaultDownloadParallelism is how many outputs of one project are
	// fetched at once.
	DefaultDownloadParallelism = 4
	// DefaultDownloadResumes is how many times one output's transfer is
	// resumed after a broken connection.
	DefaultDownloadResumes = 8
	// downloadBuffer is the one copy buffer each transfer uses: memory
	// does not depend on the file size.
	downloadBuffer = 256 << 10
	// maxURLRefreshes bounds how often expired URLs are renewed per call.
	maxURLRefreshes = 3
	// maxNameVariants bounds the " (n)" suffixes tried for a free name.
	maxNameVariants = 1000
)

// DownloadedFile is one output saved by Download.
type DownloadedFile struct {
	// Index is the output's position in Project.Downloads (from 0).
	Index int
	// Path is where the file landed.
	Path string
	// Size is its size in bytes.
	Size int64
	// URL is the download URL it came from (the last one used, after any
	// refresh). It embeds a credential and expires: do not log or store it.
	URL string
	// Unchanged is set when a file with the same bytes (size and SHA-256)
	// was already there under one of the output's names: Path is that
	// file and nothing was written.
	Unchanged bool
}

// DownloadFailure is one output Download could not save.
type DownloadFailure struct {
	Index int
	Err   error
}

// DownloadError reports a Download where at least one output failed.
// Landed lists the outputs that were saved anyway (complete, under their
// final names); no partial file is left for the failed ones.
type DownloadError struct {
	ProjectID string
	Failed    []DownloadFailure
	Landed    []DownloadedFile
}

func (e *DownloadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "magichour: download of project %s: %d of %d outputs failed", e.ProjectID, len(e.Failed), len(e.Failed)+len(e.Landed))
	for _, f := range e.Failed {
		fmt.Fprintf(&b, "; output %d: %v", f.Index, f.Err)
	}
	if len(e.Landed) > 0 {
		names := make([]string, len(e.Landed))
		for i, f := range e.Landed {
			names[i] = f.Path
		}
		fmt.Fprintf(&b, "; saved: %s", strings.Join(names, ", "))
	}
	return b.String()
}

// Unwrap returns the errors of the failed outputs.
func (e *DownloadError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f.Err
	}
	return out
}

// DownloadOption configures Download.
type DownloadOption func(*downloadConfig)

type downloadConfig struct {
	progress    func(file int, done, total int64)
	parallelism int
	resumes     int
	overwrite   bool
}

// WithOverwrite replaces an existing "<project id>-<n>.<ext>" instead of
// saving under a free " (n)" name.
func WithOverwrite() DownloadOption {
	return func(c *downloadConfig) { c.overwrite = true }
}

// WithDownloadProgress calls fn as bytes arrive: file is the output's
// index, done the bytes saved so far and total its size (-1 when unknown).
// After a resume done continues where it stopped; after a restart it goes
// back to 0. Calls are serialized.
func WithDownloadProgress(fn func(file int, done, total int64)) DownloadOption {
	return func(c *downloadConfig) { c.progress = fn }
}

// WithDownloadParallelism sets how many outputs are fetched at once
// (default DefaultDownloadParallelism).
func WithDownloadParallelism(n int) DownloadOption {
	return func(c *downloadConfig) {
		if n > 0 {
			c.parallelism = n
		}
	}
}

// WithDownloadResumes sets how many times one transfer is resumed after a
// broken connection (default DefaultDownloadResumes).
func WithDownloadResumes(n int) DownloadOption {
	return func(c *downloadConfig) {
		if n >= 0 {
			c.resumes = n
		}
	}
}

// Download saves every output of a completed project into dir and returns
// the saved files in output order.
//
// Naming: output n (counted from 0, as in Project.Downloads) is saved as
// "<project id>-<n>.<ext>", the extension coming from the URL's path or
// else the Content-Type ("bin" if neither says). An existing file is never
// overwritten: the name then becomes "<id>-<n> (2).<ext>", "(3)", and so
// on. The name is claimed atomically (a hard link of the finished temp
// file, which fails if the name exists), so concurrent downloads into the
// same folder cannot overwrite each other either. When one of those names
// already holds the same bytes (same size and SHA-256), the download is
// not saved again: that file is returned with Unchanged set.
// WithOverwrite replaces "<id>-<n>.<ext>" instead.
//
// The folder is created (with its parents) when missing.
//
// Each output is streamed to a temp file ".hourglass-*.part" in dir with a
// fixed 256 KiB buffer (memory does not depend on the file size), synced
// to disk, and only then given its final name. A broken connection is
// resumed with a Range request (restarting cleanly if the server ignores
// it); an expired URL (403 or 410) is renewed by fetching the project
// again; the byte count is checked against Content-Length. On failure the
// temp file is removed and nothing appears under the final name.
//
// Outputs are fetched in parallel (WithDownloadParallelism). If some fail,
// Download returns the saved ones and a *DownloadError naming each failure.
func (c *Client) Download(ctx context.Context, p *Project, dir string, opts ...DownloadOption) ([]DownloadedFile, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: Download: nil project", ErrInvalidRequest)
	}
	if p.Status != StatusComplete {
		if err := p.Err(); err != nil {
			return nil, fmt.Errorf("magichour: download of project %s: nothing to download: %w", p.ID, err)
		}
		return nil, fmt.Errorf("magichour: download of project %s: the project is %s, not complete: Wait for it first", p.ID, p.Status)
	}
	if len(p.Downloads) == 0 {
		return nil, fmt.Errorf("magichour: download of project %s: the project has no downloads", p.ID)
	}
	if dir == "" {
		dir = "."
	}
	if st, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("magichour: download of project %s: create output folder: %w", p.ID, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("magichour: download of project %s: output folder: %w", p.ID, err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("magichour: download of project %s: output folder %s is not a directory", p.ID, dir)
	}
	cfg := downloadConfig{parallelism: DefaultDownloadParallelism, resumes: DefaultDownloadResumes}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	var progMu sync.Mutex
	progress := func(file int, done, total int64) {
		if cfg.progress != nil {
			progMu.Lock()
			cfg.progress(file, done, total)
			progMu.Unlock()
		}
	}
	src := &urlSource{c: c, p: p}
	n := len(p.Downloads)
	files := make([]DownloadedFile, n)
	errs := forEach(ctx, n, cfg.parallelism, func(ctx context.Context, i int) error {
		var err error
		files[i], err = c.downloadOne(ctx, src, i, dir, &cfg, progress)
		return err
	})
	var de DownloadError
	for i := range n {
		if errs[i] != nil {
			de.Failed = append(de.Failed, DownloadFailure{Index: i, Err: errs[i]})
		} else {
			de.Landed = append(de.Landed, files[i])
		}
	}
	if len(de.Failed) > 0 {
		de.ProjectID = p.ID
		return de.Landed, &de
	}
	return files, nil
}

// urlSource hands out download URLs and renews them, once per generation,
// when they expire.
type urlSource struct {
	c         *Client
	mu        sync.Mutex
	p         *Project
	gen       int
	refreshes int
}

func (s *urlSource) url(i int) (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p.Downloads[i].URL, s.gen
}

// refresh fetches the project again unless another output already did
// since generation seen.
func (s *urlSource) refresh(ctx context.Context, i, seen int) (string, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == seen {
		if s.refreshes >= maxURLRefreshes {
			return "", 0, fmt.Errorf("the download URL still fails after %d refreshes", s.refreshes)
		}
		s.refreshes++
		p, err := s.c.GetProject(ctx, s.p.Kind, s.p.ID)
		if err != nil {
			return "", 0, fmt.Errorf("refresh expired URL: %w", err)
		}
		if len(p.Downloads) <= i {
			return "", 0, fmt.Errorf("refresh expired URL: the project now has %d downloads", len(p.Downloads))
		}
		s.p, s.gen = p, s.gen+1
	}
	return s.p.Downloads[i].URL, s.gen, nil
}

// downloadOne fetches output i to a temp file and gives it its final name.
func (c *Client) downloadOne(ctx context.Context, src *urlSource, i int, dir string, cfg *downloadConfig, progress func(int, int64, int64)) (DownloadedFile, error) {
	tmp, err := os.CreateTemp(dir, ".hourglass-*.part")
	if err != nil {
		return DownloadedFile{}, fmt.Errorf("create temp file: %w", err)
	}
	tmpName := tmp.Name()
	// CreateTemp makes the file private (0600); an output is an ordinary
	// file the user will open with other tools, as curl -o would leave it.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmpName)
		return DownloadedFile{}, fmt.Errorf("chmod temp file: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
		}
		os.Remove(tmpName) // after a link or rename this is a no-op or drops the temp name
	}()
	url, gen := src.url(i)
	buf := make([]byte, downloadBuffer)
	var (
		offset, total int64 = 0, -1
		ctype         string
		resumes       int
		lastErr       error
	)
	for {
		if err := ctx.Err(); err != nil {
			return DownloadedFile{}, err
		}
		r := request{method: http.MethodGet, url: url, noTimeout: true, header: http.Header{"Accept": {"*/*"}}}
		if offset > 0 {
			r.header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
		}
		resp, err := c.do(ctx, r)
		if err != nil {
			var apiErr *APIError
			if errors.As(err, &apiErr) && (apiErr.StatusCode == http.StatusForbidden || apiErr.StatusCode == http.StatusGone) {
				url, gen, err = src.refresh(ctx, i, gen)
				if err != nil {
					return DownloadedFile{}, fmt.Errorf("%w (URL expired: %v)", err, apiErr)
				}
				continue
			}
			if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusRequestedRangeNotSatisfiable && offset > 0 {
				offset, total = 0, -1 // the file changed under us: start over
				if err := restart(tmp); err != nil {
					return DownloadedFile{}, err
				}
				continue
			}
			if lastErr != nil {
				return DownloadedFile{}, fmt.Errorf("%w (after: %v)", err, lastErr)
			}
			return DownloadedFile{}, err
		}
		if ct := resp.Header.Get("Content-Type"); ct != "" {
			ctype = ct
		}
		switch {
		case offset > 0 && resp.StatusCode == http.StatusPartialContent:
			start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
			if !ok || start != offset || (total >= 0 && size >= 0 && size != total) {
				// Not the continuation we asked for: start over.
				offset, total = 0, -1
				if err := restart(tmp); err != nil {
					resp.Body.Close()
					return DownloadedFile{}, err
				}
				resp.Body.Close()
				continue
			}
			if size >= 0 {
				total = size
			}
		case resp.StatusCode == http.StatusOK:
			if offset > 0 { // Range ignored: the whole file again
				offset = 0
				if err := restart(tmp); err != nil {
					resp.Body.Close()
					return DownloadedFile{}, err
				}
			}
			total = resp.ContentLength
		default:
			resp.Body.Close()
			return DownloadedFile{}, fmt.Errorf("GET %s: unexpected status %s", stripQuery(url), resp.Status)
		}
		w := &progressWriter{w: tmp, n: offset, total: total, fn: func(n, t int64) { progress(i, n, t) },
			fd: tmp.Fd(), flushed: offset}
		_, err = io.CopyBuffer(w, resp.Body, buf)
		resp.Body.Close()
		offset = w.n
		if err == nil && total >= 0 && offset != total {
			err = fmt.Errorf("got %d of %d bytes (Content-Length mismatch)", offset, total)
			if offset > total {
				return DownloadedFile{}, fmt.Errorf("GET %s: %w", stripQuery(url), err)
			}
		}
		if err == nil {
			break
		}
		var werr *writeError
		if errors.As(err, &werr) {
			return DownloadedFile{}, fmt.Errorf("write %s: %w", tmpName, werr.err)
		}
		if ctx.Err() != nil {
			return DownloadedFile{}, ctx.Err()
		}
		lastErr = err
		resumes++
		if resumes > cfg.resumes {
			return DownloadedFile{}, fmt.Errorf("GET %s: connection broken %d times, last at byte %d of %d: %w", stripQuery(url), resumes, offset, total, err)
		}
		c.logger.Log(ctx, retryLogLevel(0), "magichour: resuming download", "url", stripQuery(url), "offset", offset, "total", total, "err", err.Error())
		if err := sleepCtx(ctx, c.backoff(resumes, 0)/4); err != nil {
			return DownloadedFile{}, err
		}
	}
	if err := tmp.Sync(); err != nil {
		return DownloadedFile{}, fmt.Errorf("sync %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		tmp = nil
		return DownloadedFile{}, fmt.Errorf("close %s: %w", tmpName, err)
	}
	tmp = nil
	base := fmt.Sprintf("%s-%d", safeName(src.p.ID), i)
	ext := extFor(url, ctype)
	if cfg.overwrite {
		final := filepath.Join(dir, base+"."+ext)
		if err := os.Rename(tmpName, final); err != nil {
			return DownloadedFile{}, fmt.Errorf("save as %s: %w", final, err)
		}
		syncDir(dir)
		return DownloadedFile{Index: i, Path: final, Size: offset, URL: url}, nil
	}
	if same, err := identicalFile(tmpName, offset, dir, base, ext); err != nil {
		return DownloadedFile{}, err
	} else if same != "" {
		return DownloadedFile{Index: i, Path: same, Size: offset, URL: url, Unchanged: true}, nil
	}
	final, err := claimName(tmpName, dir, base, ext)
	if err != nil {
		return DownloadedFile{}, err
	}
	syncDir(dir)
	return DownloadedFile{Index: i, Path: final, Size: offset, URL: url}, nil
}

// identicalFile returns the existing "<base>.<ext>" or "<base> (n).<ext>"
// that holds the same bytes as tmp (size first, then SHA-256), or "". Only
// files of the same size are hashed, so a first download costs nothing.
func identicalFile(tmp string, size int64, dir, base, ext string) (string, error) {
	var sum []byte
	for n := 1; n <= maxNameVariants; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s (%d)", base, n)
		}
		cand := filepath.Join(dir, name+"."+ext)
		st, err := os.Stat(cand)
		if errors.Is(err, os.ErrNotExist) {
			return "", nil // names are claimed in order: no later one exists
		}
		if err != nil || !st.Mode().IsRegular() || st.Size() != size {
			continue
		}
		if sum == nil {
			if sum, err = fileSHA256(tmp); err != nil {
				return "", fmt.Errorf("hash %s: %w", tmp, err)
			}
		}
		other, err := fileSHA256(cand)
		if err == nil && bytes.Equal(sum, other) {
			return cand, nil
		}
	}
	return "", nil
}

func fileSHA256(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// restart empties the temp file for a fresh transfer.
func restart(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("restart download: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("restart download: %w", err)
	}
	return nil
}

// claimName gives the finished temp file a final name that did not exist,
// trying "<base>.<ext>", "<base> (2).<ext>", ... It links the temp file
// under the name (failing if it exists), so no existing file is ever
// replaced; where hard links are unsupported it creates the name with
// O_EXCL and renames the temp file over its own placeholder.
func claimName(tmp, dir, base, ext string) (string, error) {
	for n := 1; n <= maxNameVariants; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s (%d)", base, n)
		}
		final := filepath.Join(dir, name+"."+ext)
		err := os.Link(tmp, final)
		if err == nil {
			return final, nil
		}
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if !linkUnsupported(err) {
			return "", fmt.Errorf("save as %s: %w", final, err)
		}
		f, err := os.OpenFile(final, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("save as %s: %w", final, err)
		}
		f.Close()
		if err := os.Rename(tmp, final); err != nil {
			os.Remove(final)
			return "", fmt.Errorf("save as %s: %w", final, err)
		}
		return final, nil
	}
	return "", fmt.Errorf("save %s.%s: %d names taken in %s; clean up the folder", base, ext, maxNameVariants, dir)
}

func linkUnsupported(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP) ||
		errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EMLINK) || errors.Is(err, errors.ErrUnsupported)
}

// syncDir makes a new directory entry durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// safeName keeps an id usable as a file name.
func safeName(id string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r == ':' {
			return '_'
		}
		return r
	}, id)
}

var typeExts = map[string]string{
	"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
	"video/mp4": "mp4", "video/webm": "webm", "video/quicktime": "mov",
	"audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav",
}

// extFor picks the file extension from the URL path, else the Content-Type.
func extFor(rawURL, ctype string) string {
	if u, err := neturl.Parse(rawURL); err == nil {
		if ext := strings.TrimPrefix(path.Ext(u.Path), "."); validExt(ext) {
			return strings.ToLower(ext)
		}
	}
	if mt, _, err := mime.ParseMediaType(ctype); err == nil {
		if ext, ok := typeExts[mt]; ok {
			return ext
		}
		if exts, _ := mime.ExtensionsByType(mt); len(exts) > 0 {
			return strings.TrimPrefix(exts[0], ".")
		}
	}
	return "bin"
}

func validExt(ext string) bool {
	if ext == "" || len(ext) > 5 {
		return false
	}
	for _, r := range ext {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// parseContentRange reads "bytes start-end/size" (size may be "*": -1).
func parseContentRange(v string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	s, e, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	first, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, 0, false
	}
	last, err := strconv.ParseUint(e, 10, 63)
	if err != nil || last < first {
		return 0, 0, false
	}
	size = -1
	if sz != "*" {
		n, err := strconv.ParseUint(sz, 10, 63)
		if err != nil || last >= n {
			return 0, 0, false
		}
		size = int64(n)
	}
	return int64(first), size, true
}

// progressWriter counts bytes written and reports them. It hides the
// file's ReadFrom so that io.CopyBuffer uses the caller's fixed buffer.
//
// Every writebackChunk bytes it starts the kernel's writeback of what was
// just written (startWriteback), so that the disk works while the network
// does and the fsync before the rename is short.
type progressWriter struct {
	w     io.Writer
	n     int64
	total int64
	fn    func(done, total int64)

	fd      uintptr
	flushed int64 // writeback started up to here
}

// writebackChunk is how much is written between two writeback starts.
const writebackChunk = 8 << 20

type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if p.fd != 0 && p.n-p.flushed >= writebackChunk {
		startWriteback(p.fd, p.flushed, p.n-p.flushed)
		p.flushed = p.n
	}
	p.fn(p.n, p.total)
	if err != nil {
		return n, &writeError{err}
	}
	return n, nil
}
