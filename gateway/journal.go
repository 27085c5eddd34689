package gateway

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The create journal keeps the upstream ids of creates that reached Magic
// Hour but are not saved in the database yet (a full disk, a database
// outage), so a restart does not orphan a billed project. It is a
// fixed-size file written once at open (zeros, really allocated), so
// recording an id later overwrites allocated blocks and needs no new space
// on a full disk. Each process holds one journal file under an exclusive
// lock (create-journal-N.bin, the first N free); at open it also takes
// over the files of processes that are gone (unlocked) and replays their
// records.

const (
	journalSlots    = 256
	journalSlotSize = 512
	journalHeader   = 64
	journalMagic    = "HGCJ1\n"
	journalMaxFiles = 16
)

// heldCreate is a create that reached Magic Hour and is not saved yet.
type heldCreate struct {
	JobID      string    `json:"job"`
	UpstreamID string    `json:"upstream_id"`
	Credits    int       `json:"credits"`
	At         time.Time `json:"at"`

	file, slot int  // where the journal keeps it (file -1: memory only)
	busy       bool // a step is saving it (the background saver skips it)
	attempts   int  // failed saves so far
}

// createJournal is the set of journal files a process holds.
type createJournal struct {
	mu    sync.Mutex
	files []*os.File // [0] is this process's own; the rest taken over
	used  []map[int]bool
}

// openJournal locks this process's journal file in dir (creating dir and
// files as needed) and every abandoned one, and returns the records found.
func openJournal(dir string) (*createJournal, []*heldCreate, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("gateway: create journal folder: %w", err)
	}
	j := &createJournal{}
	var held []*heldCreate
	for n := range journalMaxFiles {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("create-journal-%d.bin", n)), os.O_RDWR|os.O_CREATE, 0o640)
		if err != nil {
			j.close()
			return nil, nil, fmt.Errorf("gateway: create journal: %w", err)
		}
		if ok, err := lockFile(f); err != nil || !ok {
			f.Close() // another live process holds it (or locks are unsupported)
			if err != nil {
				j.close()
				return nil, nil, fmt.Errorf("gateway: lock create journal: %w", err)
			}
			continue
		}
		recs, err := readJournal(f)
		if err != nil {
			f.Close()
			j.close()
			return nil, nil, fmt.Errorf("gateway: create journal %s: %w", f.Name(), err)
		}
		if len(recs) == 0 && len(j.files) > 0 {
			f.Close() // abandoned and empty: nothing to take over
			continue
		}
		idx := len(j.files)
		used := map[int]bool{}
		for _, r := range recs {
			r.file = idx
			used[r.slot] = true
			held = append(held, r)
		}
		j.files, j.used = append(j.files, f), append(j.used, used)
	}
	if len(j.files) == 0 {
		return nil, nil, fmt.Errorf("gateway: all %d create journal files in %s are locked by other processes", journalMaxFiles, dir)
	}
	if err := preallocate(j.files[0]); err != nil {
		j.close()
		return nil, nil, fmt.Errorf("gateway: preallocate create journal: %w", err)
	}
	return j, held, nil
}

// preallocate writes the header and zeros over any slot area not written
// yet, then syncs: afterwards every slot write lands on allocated space.
func preallocate(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := int64(journalHeader + journalSlots*journalSlotSize)
	if st.Size() < size {
		if _, err := f.WriteAt(make([]byte, size-st.Size()), st.Size()); err != nil {
			return err
		}
	}
	hdr := make([]byte, journalHeader)
	copy(hdr, journalMagic)
	binary.LittleEndian.PutUint32(hdr[8:], journalSlots)
	binary.LittleEndian.PutUint32(hdr[12:], journalSlotSize)
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return err
	}
	return f.Sync()
}

// readJournal returns the valid records of a journal file (torn or zeroed
// slots are skipped).
func readJournal(f *os.File) ([]*heldCreate, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, journalHeader+journalSlots*journalSlotSize))
	if err != nil {
		return nil, err
	}
	if len(b) < journalHeader || !bytes.HasPrefix(b, []byte(journalMagic)) {
		return nil, nil // new (or never initialized) file
	}
	var out []*heldCreate
	for s := range journalSlots {
		off := journalHeader + s*journalSlotSize
		if off+journalSlotSize > len(b) {
			break
		}
		slot := b[off : off+journalSlotSize]
		n := int(binary.LittleEndian.Uint32(slot[0:]))
		sum := binary.LittleEndian.Uint32(slot[4:])
		if n == 0 || n > journalSlotSize-8 || crc32.ChecksumIEEE(slot[8:8+n]) != sum {
			continue
		}
		var r heldCreate
		if json.Unmarshal(slot[8:8+n], &r) != nil || r.JobID == "" || r.UpstreamID == "" {
			continue
		}
		r.slot = s
		out = append(out, &r)
	}
	return out, nil
}

// add writes r to a free slot of this process's file and syncs it. With
// every slot taken, r is held in memory only (and the error says so).
func (j *createJournal) add(r *heldCreate) error {
	r.file = -1
	if j == nil {
		return nil
	}
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if len(body) > journalSlotSize-8 {
		return errors.New("gateway: create journal record too large")
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	slot := -1
	for s := range journalSlots {
		if !j.used[0][s] {
			slot = s
			break
		}
	}
	if slot < 0 {
		return fmt.Errorf("gateway: create journal full (%d held creates)", journalSlots)
	}
	buf := make([]byte, journalSlotSize)
	binary.LittleEndian.PutUint32(buf[0:], uint32(len(body)))
	binary.LittleEndian.PutUint32(buf[4:], crc32.ChecksumIEEE(body))
	copy(buf[8:], body)
	f := j.files[0]
	if _, err := f.WriteAt(buf, int64(journalHeader+slot*journalSlotSize)); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	j.used[0][slot] = true
	r.file, r.slot = 0, slot
	return nil
}

// remove clears r's slot (after its id is saved in the database).
func (j *createJournal) remove(r *heldCreate) error {
	if j == nil || r.file < 0 {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	f := j.files[r.file]
	if _, err := f.WriteAt(make([]byte, 8), int64(journalHeader+r.slot*journalSlotSize)); err != nil {
		return err
	}
	delete(j.used[r.file], r.slot)
	r.file = -1
	return f.Sync()
}

// close releases the journal files (their locks go with them).
func (j *createJournal) close() {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, f := range j.files {
		f.Close()
	}
	j.files = nil
}
