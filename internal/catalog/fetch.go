package catalog

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// MaxSpecSize bounds a spec document read by Fetch.
const MaxSpecSize = 32 << 20

// Fetch reads a spec document from a file path or an http(s) URL (with hc,
// or a client with a 30 s timeout when nil) and loads it: what --spec
// FILE|URL takes. The catalog's Source is src and its Date the time of the
// read (a file's modification time).
func Fetch(ctx context.Context, hc *http.Client, src string) (*Catalog, error) {
	b, date, err := readSpec(ctx, hc, src)
	if err != nil {
		return nil, err
	}
	return Load(b, WithSource(src), WithDate(date))
}

func readSpec(ctx context.Context, hc *http.Client, src string) ([]byte, time.Time, error) {
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		f, err := os.Open(src)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("catalog: spec: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("catalog: spec: %w", err)
		}
		b, err := io.ReadAll(io.LimitReader(f, MaxSpecSize+1))
		if err == nil && len(b) > MaxSpecSize {
			err = fmt.Errorf("larger than %d bytes", MaxSpecSize)
		}
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("catalog: spec %s: %w", src, err)
		}
		return b, st.ModTime(), nil
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("catalog: spec %s: %w", src, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("catalog: fetch spec: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, time.Time{}, fmt.Errorf("catalog: fetch spec %s: %s", src, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxSpecSize+1))
	if err == nil && len(b) > MaxSpecSize {
		err = fmt.Errorf("larger than %d bytes", MaxSpecSize)
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("catalog: fetch spec %s: %w", src, err)
	}
	return b, time.Now().UTC(), nil
}
