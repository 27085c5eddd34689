package emulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// Account is the emulated account, as GET /v1/account and the admin API
// show it.
type Account struct {
	Tier    string `json:"tier"`
	Credits int64  `json:"credits"`
}

// Account returns the account's tier and balance.
func (e *Emulator) Account() Account {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settleDueLocked(e.clock.Now())
	return Account{Tier: e.tier, Credits: e.balance}
}

// SetTier changes the account's tier.
func (e *Emulator) SetTier(t string) error {
	if !slices.Contains(catalog.Tiers, t) {
		return fmt.Errorf("emulator: unknown tier %q (want one of %s)", t, strings.Join(catalog.Tiers, ", "))
	}
	e.mu.Lock()
	e.tier = t
	e.mu.Unlock()
	return nil
}

func (e *Emulator) handleAccount(w http.ResponseWriter) {
	a := e.Account()
	var sub any
	if a.Tier != "free" {
		price := map[string]int64{"creator": 1200, "pro": 4900, "business": 24900}[a.Tier]
		sub = map[string]any{
			"name": strings.ToUpper(a.Tier[:1]) + a.Tier[1:], "status": "active",
			"price": map[string]any{"amount": price, "currency": "usd"}, "discount": nil, "billing_interval": "month",
			"current_period_end": timestamp(e.clock.Now().Add(30 * 24 * time.Hour).Truncate(24 * time.Hour)), "cancel_at_period_end": false,
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": "acct_emulator", "email": "emulator@example.com", "tier": a.Tier,
		"credits": max(a.Credits, 0), "subscription": sub})
}

// SavedItem is a saved item in the spec's shape (GET /v1/saved-items
// items); url and url_expires_at are filled in by the emulator.
type SavedItem struct {
	ID     string           `json:"id"`
	Type   string           `json:"type"`
	Name   *string          `json:"name"`
	Assets []SavedItemAsset `json:"assets"`
}

// SavedItemAsset is one asset of a saved item.
type SavedItemAsset struct {
	FilePath  string `json:"file_path"`
	MediaKind string `json:"media_kind"` // IMAGE, VIDEO or AUDIO
	IsPrimary bool   `json:"is_primary"`
}

var savedTypes = []string{"character", "reference", "voice", "moodboard", "brand_kit"}

func checkSavedItems(items []SavedItem) error {
	seen := map[string]bool{}
	for i, it := range items {
		switch {
		case it.ID == "":
			return fmt.Errorf("emulator: saved item %d: no id", i)
		case seen[it.ID]:
			return fmt.Errorf("emulator: saved item %s: duplicate id", it.ID)
		case !slices.Contains(savedTypes, it.Type):
			return fmt.Errorf("emulator: saved item %s: type %q is not one of %s", it.ID, it.Type, strings.Join(savedTypes, ", "))
		}
		seen[it.ID] = true
		for _, a := range it.Assets {
			if !strings.HasPrefix(a.FilePath, "saved-items/") || strings.Contains(a.FilePath, "..") {
				return fmt.Errorf("emulator: saved item %s: file_path %q must start with saved-items/", it.ID, a.FilePath)
			}
			if m := strings.ToLower(a.MediaKind); m != "image" && m != "video" && m != "audio" {
				return fmt.Errorf("emulator: saved item %s: media_kind %q is not IMAGE, VIDEO or AUDIO", it.ID, a.MediaKind)
			}
		}
	}
	return nil
}

// ParseSavedItems reads a JSON array of saved items (the spec's items
// shape), as --saved-items takes.
func ParseSavedItems(b []byte) ([]SavedItem, error) {
	var items []SavedItem
	if err := json.Unmarshal(b, &items); err != nil {
		return nil, fmt.Errorf("emulator: saved items: %w", err)
	}
	return items, checkSavedItems(items)
}

type savedItem struct{ SavedItem }

func newSavedItem(it SavedItem) *savedItem {
	c := it
	c.Assets = slices.Clone(it.Assets)
	return &savedItem{c}
}

// AddSavedItems adds saved items (an item with an existing id replaces it).
func (e *Emulator) AddSavedItems(items []SavedItem) error {
	if err := checkSavedItems(items); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, it := range items {
		i := slices.IndexFunc(e.saved, func(s *savedItem) bool { return s.ID == it.ID })
		if i >= 0 {
			e.saved[i] = newSavedItem(it)
		} else {
			e.saved = append(e.saved, newSavedItem(it))
		}
	}
	return nil
}

// SavedItems returns the saved items.
func (e *Emulator) SavedItems() []SavedItem {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]SavedItem, len(e.saved))
	for i, s := range e.saved {
		out[i] = s.SavedItem
	}
	return out
}

// savedAssetLocked returns the saved asset with file path p.
func (e *Emulator) savedAssetLocked(p string) (*savedItem, int) {
	for _, s := range e.saved {
		for i, a := range s.Assets {
			if a.FilePath == p {
				return s, i
			}
		}
	}
	return nil, -1
}

func (e *Emulator) handleSavedItems(w http.ResponseWriter, r *http.Request, op *catalog.Operation) {
	q := r.URL.Query()
	typ := q.Get("type")
	if typ != "" && !slices.Contains(savedTypes, typ) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("type: must be one of %s, got %q", strings.Join(savedTypes, ", "), typ))
		return
	}
	limit := 20
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: must be an integer from 1 to 100, got %q", s))
			return
		}
		limit = n
	}
	start := 0
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || err2 != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "cursor: not a cursor of this API")
			return
		}
		start = n
	}
	e.mu.Lock()
	now := e.clock.Now()
	var matched []*savedItem
	for _, s := range e.saved {
		if typ == "" || s.Type == typ {
			matched = append(matched, s)
		}
	}
	items := []map[string]any{}
	end := min(start+limit, len(matched))
	for _, s := range matched[min(start, len(matched)):end] {
		assets := []map[string]any{}
		for i, a := range s.Assets {
			d := e.downloadURLLocked("s", s.ID, i, a.FilePath[strings.LastIndex(a.FilePath, "/")+1:], now, false)
			assets = append(assets, map[string]any{"file_path": a.FilePath, "media_kind": strings.ToUpper(a.MediaKind),
				"is_primary": a.IsPrimary, "url": d.URL, "url_expires_at": d.ExpiresAt})
		}
		items = append(items, map[string]any{"id": s.ID, "type": s.Type, "name": s.Name, "assets": assets})
	}
	e.mu.Unlock()
	var next any
	if end < len(matched) {
		next = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
}

// savedOutput is the placeholder media served for a saved asset.
func savedOutput(a SavedItemAsset) output {
	switch strings.ToLower(a.MediaKind) {
	case "video":
		return output{media: "video", format: "mp4", w: 512, h: 512, seconds: 1}
	case "audio":
		return output{media: "audio", format: "mp3", seconds: 1}
	}
	return output{media: "image", format: "png", w: 512, h: 512}
}
