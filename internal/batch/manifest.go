package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Line statuses in the manifest.
const (
	// StatusPending: not created yet (never tried, or stopped by the
	// credit cap or an interrupt before its create).
	StatusPending = "pending"
	// StatusCreating: the create is being sent. Found in a journal at
	// start, it means the create's answer was lost (crash or kill): the
	// line becomes StatusOutcomeUnknown.
	StatusCreating = "creating"
	// StatusSubmitted: the job exists (JobID is set) and is not finished.
	StatusSubmitted = "submitted"
	// StatusComplete: the job completed and every output is saved
	// (outputs with their sha256).
	StatusComplete = "complete"
	// StatusError: the job, its create or its download failed.
	StatusError = "error"
	// StatusCanceled: the job was canceled.
	StatusCanceled = "canceled"
	// StatusOutcomeUnknown: a create may have reached Magic Hour without
	// its answer (the SDK's ErrCreateOutcomeUnknown, or a crash while it
	// was on the wire). Magic Hour has no idempotency key and no project
	// list, so the job cannot be found again: the line is never resent
	// unless --resend-unknown says so (accepting a possible second charge).
	StatusOutcomeUnknown = "create_outcome_unknown"
	// StatusInvalid: the line did not validate (with --skip-invalid).
	StatusInvalid = "invalid"
)

// terminal reports whether a status needs no more work on this run.
func terminal(s string) bool {
	switch s {
	case StatusComplete, StatusError, StatusCanceled, StatusOutcomeUnknown, StatusInvalid:
		return true
	}
	return false
}

// Failed reports whether a status is a failure that --retry-failed retries.
func Failed(s string) bool { return s == StatusError || s == StatusCanceled }

// Entry is one line of the manifest: a line's request and its state.
type Entry struct {
	Line   int             `json:"line"`
	Key    string          `json:"key"`
	Tool   string          `json:"tool"`
	Name   string          `json:"name,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Status string          `json:"status"`
	// Attempt counts tries with --retry-failed (1 for the first); the key
	// sent is Key for the first and Key~N for the Nth.
	Attempt int `json:"attempt,omitempty"`
	// JobID is the Magic Hour project id (standalone) or the gateway job id.
	JobID string `json:"job_id,omitempty"`
	Kind  string `json:"kind,omitempty"`
	// Via is where the job was created: "api" (Magic Hour or an emulator,
	// through the SDK) or "gateway".
	Via string `json:"via,omitempty"`
	// BatchID is the gateway's batch (gateway mode).
	BatchID string `json:"batch_id,omitempty"`
	// EstimatedCredits is the estimate the credit cap counted; Credits
	// what was charged, once known.
	EstimatedCredits int64       `json:"estimated_credits,omitempty"`
	Credits          int64       `json:"credits,omitempty"`
	Outputs          []OutputRef `json:"outputs,omitempty"`
	Error            *ErrorInfo  `json:"error,omitempty"`
}

// OutputRef is one saved output of a line.
type OutputRef struct {
	Index  int    `json:"index"`
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ErrorInfo says why a line failed.
type ErrorInfo struct {
	Code    string `json:"code,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// sentKey is the idempotency key of the entry's current attempt.
func (e *Entry) sentKey() string {
	if e.Attempt <= 1 {
		return e.Key
	}
	return fmt.Sprintf("%s~%d", e.Key, e.Attempt)
}

// charged is what the entry counts against the credit cap: the charge
// when known, else the estimate; nothing for a job that does not exist.
func (e *Entry) charged() int64 {
	switch e.Status {
	case StatusPending, StatusInvalid:
		return 0
	case StatusError, StatusCanceled:
		// Failed jobs are refunded; a refused create never charged.
		return e.Credits
	}
	if e.Credits > 0 {
		return e.Credits
	}
	return e.EstimatedCredits
}

// DefaultManifestPath is where the manifest of input goes: beside it,
// "<name>.manifest.jsonl" (a manifest fed back in is its own manifest).
func DefaultManifestPath(input string, isManifest bool) string {
	if isManifest {
		return input
	}
	ext := filepath.Ext(input)
	return strings.TrimSuffix(input, ext) + ".manifest.jsonl"
}

// ReadManifest reads a manifest; a missing file is an empty one.
func ReadManifest(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readEntries(f, path)
}

func readEntries(r io.Reader, name string) ([]Entry, error) {
	var out []Entry
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		raw, err := readLine(br)
		raw = bytes.TrimSpace(raw)
		if len(raw) > 0 {
			var e Entry
			if jerr := json.Unmarshal(raw, &e); jerr != nil {
				if errors.Is(err, io.EOF) {
					break // a torn last line: the write it belongs to did not finish
				}
				return nil, fmt.Errorf("%s:%d: %w", name, n, jerr)
			}
			out = append(out, e)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
	}
	return out, nil
}

// state is a batch's durable state: the manifest, rewritten atomically
// (temp file, fsync, rename, directory fsync), and a journal of the
// entries changed since, appended and fsynced on every change that must
// survive a crash (before and after each create).
type state struct {
	mu       sync.Mutex
	path     string // manifest
	journal  *os.File
	entries  []*Entry          // in input order
	byKey    map[string]*Entry // by Key
	writeErr error
	dirty    bool     // changed since the last checkpoint
	lock     *os.File // held (flock) for the whole run
}

// ErrLocked is returned when another run holds the batch's manifest.
var ErrLocked = errors.New("batch: another run of this batch is in progress (its manifest is locked)")

func journalPath(manifest string) string { return manifest + ".journal" }

// readState returns the recorded entries of a manifest and its journal
// (the journal's later entries win), by key.
func readState(path string) (map[string]Entry, error) {
	known := map[string]Entry{}
	prev, err := ReadManifest(path)
	if err != nil {
		return nil, err
	}
	for _, e := range prev {
		known[e.Key] = e
	}
	js, err := ReadManifest(journalPath(path))
	if err != nil {
		return nil, err
	}
	for _, e := range js {
		known[e.Key] = e
	}
	return known, nil
}

// openState loads the manifest and the journal at path, and lays entries
// out in the order of recs: a line keeps its recorded state when its key
// is known (else it starts pending); records no longer in the input are
// dropped. A journal entry left in StatusCreating becomes
// StatusOutcomeUnknown.
func openState(path string, recs []Record, fromInput bool) (st *state, err error) {
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	known := map[string]Entry{}
	if !fromInput {
		prev, err := ReadManifest(path)
		if err != nil {
			return nil, fmt.Errorf("read the manifest: %w", err)
		}
		for _, e := range prev {
			known[e.Key] = e
		}
	} else {
		for _, r := range recs {
			if r.Line.Prev != nil {
				known[r.Line.Key] = *r.Line.Prev
			}
		}
	}
	if jf, err := os.Open(journalPath(path)); err == nil {
		js, err := readEntries(jf, journalPath(path))
		jf.Close()
		if err != nil {
			return nil, fmt.Errorf("read the journal: %w", err)
		}
		for _, e := range js {
			known[e.Key] = e
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	s := &state{path: path, byKey: map[string]*Entry{}, lock: lock}
	for _, r := range recs {
		l := r.Line
		e := &Entry{Line: l.N, Key: l.Key, Tool: l.Tool, Name: l.Name, Params: l.Params, Status: StatusPending, Attempt: 1}
		if !r.Valid() {
			e.Status = StatusInvalid
			e.Error = &ErrorInfo{Code: "invalid", Field: r.Errors[0].Field, Message: joinErrors(r.Errors)}
		} else if k, ok := known[l.Key]; ok && l.Key != "" {
			k.Line, k.Tool, k.Name, k.Params = l.N, l.Tool, l.Name, l.Params
			if k.Status == StatusCreating {
				k.Status = StatusOutcomeUnknown
				k.Error = &ErrorInfo{Code: "create_outcome_unknown", Message: "the run stopped while this line's create was on the wire: a job may exist upstream (and be charged) that cannot be looked up; not resent (see --resend-unknown)"}
			}
			if k.Status == StatusInvalid {
				k.Status, k.Error = StatusPending, nil // it validates now
			}
			if k.Attempt == 0 {
				k.Attempt = 1
			}
			e = &k
		}
		s.entries = append(s.entries, e)
		if e.Key != "" {
			s.byKey[e.Key] = e
		}
	}
	if err := s.flush(); err != nil {
		return nil, err
	}
	// The manifest now holds everything the journal did: start it afresh.
	jf, err := os.OpenFile(journalPath(path), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	s.journal = jf
	return s, nil
}

func joinErrors(errs []LineError) string {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = strings.TrimPrefix(e.Error(), fmt.Sprintf("line %d: ", e.Line))
	}
	return strings.Join(msgs, "; ")
}

// update applies fn to the entry under the lock and, when durable,
// appends the new entry to the journal and fsyncs it before returning.
func (s *state) update(e *Entry, durable bool, fn func(*Entry)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(e)
	s.dirty = true
	if !durable || s.journal == nil {
		return nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := s.journal.Write(append(b, '\n')); err != nil {
		s.writeErr = err
		return fmt.Errorf("write the journal: %w", err)
	}
	if err := s.journal.Sync(); err != nil {
		s.writeErr = err
		return fmt.Errorf("sync the journal: %w", err)
	}
	return nil
}

// snapshot copies the entries under the lock.
func (s *state) snapshot() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entry, len(s.entries))
	for i, e := range s.entries {
		out[i] = *e
		out[i].Outputs = append([]OutputRef(nil), e.Outputs...)
	}
	return out
}

// checkpoint rewrites the manifest from the current state and empties the
// journal (everything it held is now in the manifest).
func (s *state) checkpoint() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return nil
	}
	if err := s.flushLocked(); err != nil {
		return err
	}
	if s.journal != nil {
		if err := s.journal.Truncate(0); err != nil {
			return err
		}
		return s.journal.Sync()
	}
	return nil
}

func (s *state) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked()
}

func (s *state) flushLocked() error {
	var b bytes.Buffer
	for _, e := range s.entries {
		j, err := json.Marshal(e)
		if err != nil {
			return err
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	if err := writeFileAtomic(s.path, b.Bytes()); err != nil {
		return err
	}
	s.dirty = false
	return nil
}

// close checkpoints and closes the journal, removing it when empty.
func (s *state) close() error {
	err := s.checkpoint()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal != nil {
		s.journal.Close()
		s.journal = nil
		if err == nil {
			_ = os.Remove(journalPath(s.path))
		}
	}
	if s.lock != nil {
		s.lock.Close() // releases the flock; the file stays (removing it would race a new run)
		s.lock = nil
	}
	return err
}

// writeFileAtomic writes data to path through a synced temp file renamed
// over it, then syncs the directory: a reader sees the old file or the
// new one, never a mix.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
