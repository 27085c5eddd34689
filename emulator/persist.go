package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// Persistence (WithStateFile): the emulator's projects, uploaded files,
// balance, counters, signing key and base URL survive a restart, so a
// client that keeps state (the gateway's embedded mode) finds its
// in-flight projects again. The state is written to the file (atomically:
// temp file, fsync, rename) shortly after it changes and on Close, and read
// back by New; webhooks due after the last snapshot are sent again after a
// restart (a client dedupes them), earlier ones are not.

// WithStateFile keeps the emulator's state in path (a JSON file; uploaded
// files go to path + ".files/"). A missing file is a fresh start.
func WithStateFile(path string) Option { return func(c *config) { c.stateFile = path } }

// persistEvery is how often changed state is written.
const persistEvery = 200 * time.Millisecond

type persistedState struct {
	Version  int                         `json:"version"`
	SavedAt  time.Time                   `json:"saved_at"`
	BaseURL  string                      `json:"base_url"`
	SignKey  []byte                      `json:"sign_key"`
	Balance  int64                       `json:"balance"`
	Tier     string                      `json:"tier,omitempty"`
	Saved    []SavedItem                 `json:"saved_items,omitempty"`
	Stats    Stats                       `json:"stats"`
	Projects map[string]persistedProject `json:"projects"`
	Assets   map[string]persistedAsset   `json:"assets"`
}

type persistedProject struct {
	Op         string            `json:"op"` // catalog operation name (tool)
	Kind       catalog.Kind      `json:"kind"`
	Name       *string           `json:"name,omitempty"`
	Type       string            `json:"type"`
	Created    time.Time         `json:"created"`
	StartAt    time.Time         `json:"start_at"`
	EndAt      time.Time         `json:"end_at"`
	Outcome    string            `json:"outcome"`
	ErrCode    string            `json:"err_code,omitempty"`
	ErrMsg     string            `json:"err_msg,omitempty"`
	CanceledAt time.Time         `json:"canceled_at"`
	Settled    bool              `json:"settled"`
	Estimate   int64             `json:"estimate"`
	Final      int64             `json:"final"`
	Width      int               `json:"width"`
	Height     int               `json:"height"`
	FPS        float64           `json:"fps"`
	StartSec   float64           `json:"start_sec"`
	EndSec     float64           `json:"end_sec"`
	ImageCount int               `json:"image_count"`
	Outputs    []persistedOutput `json:"outputs"`
	Faces      int               `json:"faces"`
}

type persistedOutput struct {
	Media   string  `json:"media"`
	Format  string  `json:"format"`
	W       int     `json:"w"`
	H       int     `json:"h"`
	Seconds float64 `json:"seconds"`
}

type persistedAsset struct {
	File string `json:"file"` // name under the files folder
	Size int64  `json:"size"`
	Head []byte `json:"head"`
}

// SavedAddr returns the host:port a state file's emulator listened on ("" if
// none), so a restart can listen there again and links stay valid.
func SavedAddr(stateFile string) string {
	b, err := os.ReadFile(stateFile)
	if err != nil {
		return ""
	}
	var st struct {
		BaseURL string `json:"base_url"`
	}
	if json.Unmarshal(b, &st) != nil {
		return ""
	}
	u, err := url.Parse(st.BaseURL)
	if err != nil {
		return ""
	}
	return u.Host
}

func (e *Emulator) filesDir() string { return e.cfg.stateFile + ".files" }

// restore loads the state file, if any; called by New before the
// scheduler starts.
func (e *Emulator) restore() error {
	if e.cfg.stateFile == "" {
		return nil
	}
	b, err := os.ReadFile(e.cfg.stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("emulator: read state: %w", err)
	}
	var st persistedState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("emulator: state file %s is damaged: %w", e.cfg.stateFile, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(st.SignKey) > 0 {
		e.signKey = st.SignKey // links handed out before the restart stay valid
	}
	if e.baseURL == "" {
		e.baseURL = st.BaseURL
	}
	e.balance = st.Balance
	if st.Tier != "" {
		e.tier = st.Tier
	}
	if st.Saved != nil {
		e.saved = nil
		for _, it := range st.Saved {
			e.saved = append(e.saved, newSavedItem(it))
		}
	}
	if st.Stats.Requests != nil {
		e.stats = st.Stats.clone()
	}
	// A new id stream: ids handed out before must not come again.
	e.idRand = mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64()))
	for id, pp := range st.Projects {
		op := e.cat.Lookup(pp.Op)
		if op == nil {
			continue // a tool this build no longer knows
		}
		p := &project{id: id, op: op, kind: pp.Kind, name: pp.Name, typ: pp.Type, created: pp.Created, startAt: pp.StartAt,
			endAt: pp.EndAt, outcome: pp.Outcome, errCode: pp.ErrCode, errMsg: pp.ErrMsg, canceledAt: pp.CanceledAt,
			settled: pp.Settled, estimate: pp.Estimate, final: pp.Final, width: pp.Width, height: pp.Height, fps: pp.FPS,
			startSec: pp.StartSec, endSec: pp.EndSec, imageCount: pp.ImageCount, faces: pp.Faces}
		for _, o := range pp.Outputs {
			p.outputs = append(p.outputs, output{media: o.Media, format: o.Format, w: o.W, h: o.H, seconds: o.Seconds})
		}
		e.projects[id] = p
		// Lifecycle events after the snapshot fire (again) now or later.
		if !p.startAt.IsZero() && p.startAt.After(st.SavedAt) {
			e.pushLocked(event{at: p.startAt, id: id, kind: evStarted})
		}
		if p.endAt.After(st.SavedAt) {
			e.pushLocked(event{at: p.endAt, id: id, kind: evEnded})
		}
	}
	for ref, pa := range st.Assets {
		disk := filepath.Join(e.filesDir(), pa.File)
		if _, err := os.Stat(disk); err != nil {
			continue
		}
		e.assets[ref] = &asset{disk: disk, size: pa.Size, head: pa.Head}
	}
	e.log.Info("emulator: state restored", "file", e.cfg.stateFile, "projects", len(e.projects), "files", len(e.assets))
	return nil
}

// persistLoop writes the state when it changed, until the emulator closes.
func (e *Emulator) persistLoop() {
	defer e.wg.Done()
	var last string
	for {
		t := time.NewTimer(persistEvery)
		select {
		case <-e.done:
			t.Stop()
			return
		case <-t.C:
		}
		if sig := e.stateSignature(); sig != last {
			if err := e.persist(); err != nil {
				e.log.Warn("emulator: save state", "err", err)
				continue
			}
			last = sig
		}
	}
}

// stateSignature changes whenever something persisted does (creates,
// deletes, uploads, lifecycle events, the balance).
func (e *Emulator) stateSignature() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	canceled := 0
	for _, p := range e.projects {
		if !p.canceledAt.IsZero() {
			canceled++
		}
	}
	return fmt.Sprint(e.stats.Creates, e.eventSeq, len(e.projects), len(e.assets), e.stats.Uploads, e.balance, canceled, e.baseURL)
}

// persist writes the state file now.
func (e *Emulator) persist() error {
	if e.cfg.stateFile == "" {
		return nil
	}
	if err := os.MkdirAll(e.filesDir(), 0o750); err != nil {
		return err
	}
	e.mu.Lock()
	st := persistedState{Version: 1, SavedAt: e.clock.Now(), BaseURL: e.baseURL, SignKey: e.signKey, Balance: e.balance,
		Stats: e.stats.clone(), Projects: map[string]persistedProject{}, Assets: map[string]persistedAsset{}, Tier: e.tier}
	for _, s := range e.saved {
		st.Saved = append(st.Saved, s.SavedItem)
	}
	for id, p := range e.projects {
		pp := persistedProject{Op: p.op.Name, Kind: p.kind, Name: p.name, Type: p.typ, Created: p.created, StartAt: p.startAt,
			EndAt: p.endAt, Outcome: p.outcome, ErrCode: p.errCode, ErrMsg: p.errMsg, CanceledAt: p.canceledAt,
			Settled: p.settled, Estimate: p.estimate, Final: p.final, Width: p.width, Height: p.height, FPS: p.fps,
			StartSec: p.startSec, EndSec: p.endSec, ImageCount: p.imageCount, Faces: p.faces}
		for _, o := range p.outputs {
			pp.Outputs = append(pp.Outputs, persistedOutput{o.media, o.format, o.w, o.h, o.seconds})
		}
		st.Projects[id] = pp
	}
	type fileCopy struct{ from, to string }
	var copies []fileCopy
	for ref, a := range e.assets {
		name := filepath.Base(a.disk)
		to := filepath.Join(e.filesDir(), name)
		if a.disk != to {
			copies = append(copies, fileCopy{a.disk, to})
		}
		st.Assets[ref] = persistedAsset{File: name, Size: a.size, Head: a.head}
	}
	e.mu.Unlock()
	for _, c := range copies {
		if err := copyFileOnce(c.from, c.to); err != nil {
			return err
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeFileAtomic(e.cfg.stateFile, b)
}

// copyFileOnce copies an uploaded file into the state's folder (a hard
// link when both are on one filesystem), unless it is there already.
func copyFileOnce(from, to string) error {
	if _, err := os.Stat(to); err == nil {
		return nil
	}
	if os.Link(from, to) == nil {
		return nil
	}
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := to + ".tmp"
	dst, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		os.Remove(tmp)
		return err
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, to)
}

func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".state-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
