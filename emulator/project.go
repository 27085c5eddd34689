package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// output is one file a finished job serves.
type output struct {
	media   string // "video", "image", "audio"
	format  string // file extension: mp4, png, gif, mp3, wav
	w, h    int
	seconds float64
}

type project struct {
	id      string
	op      *catalog.Operation
	kind    catalog.Kind
	name    *string
	typ     string
	created time.Time
	startAt time.Time // zero when the job never shows "rendering" (fast image jobs)
	endAt   time.Time // when the outcome is reached
	outcome string    // complete, error or canceled (cancelme marker)
	errCode string
	errMsg  string

	canceledAt time.Time // admin cancel or delete of a running job
	settled    bool
	estimate   int64
	final      int64

	width, height    int
	fps              float64
	startSec, endSec float64
	imageCount       int
	outputs          []output
	faces            int // face detection only
}

// statusAt returns the project's status at time t.
func (p *project) statusAt(t time.Time) string {
	if !p.canceledAt.IsZero() && !t.Before(p.canceledAt) {
		return "canceled"
	}
	if t.Before(p.endAt) {
		if p.startAt.IsZero() || t.Before(p.startAt) {
			return "queued"
		}
		return "rendering"
	}
	return p.outcome
}

// creditsAt is credits_charged as the API shows it at time t.
func (p *project) creditsAt(t time.Time) int64 {
	switch p.statusAt(t) {
	case "complete":
		return p.final
	case "error", "canceled":
		return 0
	}
	return p.estimate
}

// settleLocked adjusts the balance once the project has ended.
func (e *Emulator) settleLocked(p *project, now time.Time) {
	if p.settled {
		return
	}
	st := p.statusAt(now)
	if !catalog.Terminal(st) {
		return
	}
	p.settled = true
	if st == "complete" {
		e.balance += p.estimate - p.final
	} else {
		e.balance += p.estimate
	}
}

// settleDueLocked settles every project that has ended by now.
func (e *Emulator) settleDueLocked(now time.Time) {
	for _, p := range e.projects {
		if !p.settled {
			e.settleLocked(p, now)
		}
	}
}

// --- failure markers ---

type marker struct{ token, code, message string }

var markers = []marker{
	{"noface", "no_source_face", "No face was detected in the source image or video. Use an input with one clearly visible face."},
	{"badvideo", "invalid_video_file", "The input video could not be read. Check that it is a valid, uncorrupted video file."},
	{"toolarge", "file_too_large", "An input file is larger than this tool accepts. Use a smaller or shorter file."},
	{"badparams", "invalid_parameters", "The renderer could not process these parameters. Check the request settings."},
	{"timeout", "processing_timeout", "Rendering took too long and was stopped. Try a shorter input or submit again later."},
	{"boom", "unknown_error", "An unexpected error occurred while rendering. Credits have been refunded."},
	{"nocredits", "insufficient_credits", "The account ran out of credits while rendering. Credits have been refunded."},
}

const cancelMarker = "cancelme"

var facesMarker = regexp.MustCompile(`faces([1-9])`)

// markerText gathers the strings failure markers are looked for in: the
// name, every input-file field and YouTube URL, and the first 4 KiB of every
// referenced upload.
func (e *Emulator) markerText(op *catalog.Operation, body map[string]any) string {
	var b strings.Builder
	if s, ok := body["name"].(string); ok {
		b.WriteString(s + "\n")
	}
	if assets, ok := body["assets"].(map[string]any); ok {
		if s, ok := assets["youtube_url"].(string); ok {
			b.WriteString(s + "\n")
		}
	}
	for _, fv := range fileValues(op, body) {
		b.WriteString(fv.value + "\n")
		if a := e.assets[fv.value]; a != nil {
			b.Write(a.head)
			b.WriteByte('\n')
		}
	}
	return strings.ToLower(b.String())
}

type fieldValue struct{ field, value string }

// fileValues returns every input-file string of the body, with its field path.
func fileValues(op *catalog.Operation, body map[string]any) []fieldValue {
	var out []fieldValue
	for _, r := range op.FileRefs(body) {
		out = append(out, fieldValue{r.Field, r.Value})
	}
	return out
}

// --- request reading helpers ---

func num(body map[string]any, path string) (float64, bool) { return catalog.Number(body, path) }

func str(body map[string]any, path string) string { return catalog.String(body, path) }

// --- planning a job ---

const (
	maxMediaSeconds  = 2.0             // generated media is at most this long
	faceDetectionP50 = 3 * time.Second // the catalog has no median for it
	skipStartedBelow = 6 * time.Second // image jobs shorter than this skip "rendering"
	queueFraction    = 0.15            // share of a job's duration spent queued
	jitterSigma      = 0.35
	defaultVideoFPS  = 30.0
)

// plan fills in everything a project needs from its request.
func (e *Emulator) plan(p *project, body map[string]any) {
	op := p.op
	if n, ok := body["name"].(string); ok {
		p.name = &n
	} else if s := op.Request.Prop("name"); s != nil && s.Default != "" {
		var def string
		if json.Unmarshal([]byte(s.Default), &def) == nil {
			def = strings.Replace(def, "dateTime", p.created.UTC().Format("2006-01-02 15:04:05"), 1)
			p.name = &def
		}
	}
	p.typ = projectType(op)
	switch p.kind {
	case catalog.KindVideo:
		e.planVideo(p, body)
	case catalog.KindImage:
		e.planImage(p, body)
	case catalog.KindAudio:
		n := int64(len([]rune(str(body, "style.prompt"))))
		format := "mp3"
		if op.Name == "ai-voice-cloner" {
			format = "wav"
		}
		secs := math.Min(math.Max(float64(n)/15, 1), maxMediaSeconds)
		p.outputs = []output{{media: "audio", format: format, seconds: secs}}
	}
	// The one credit model, shared with the gateway's budget checks.
	p.estimate = op.EstimateCredits(body).Credits
	p.final = p.estimate
	if p.kind == catalog.KindVideo {
		// The real service re-prices videos on the frames it rendered:
		// up to 5% below the estimate, deterministic per seed and id.
		p.final -= int64(e.hash(p.id, "final") % uint64(p.estimate/20+1))
	}
}

func (e *Emulator) planVideo(p *project, body map[string]any) {
	start, _ := num(body, "start_seconds")
	end, ok := num(body, "end_seconds")
	if !ok {
		end = start + 5
	}
	p.startSec, p.endSec = start, end
	p.fps = defaultVideoFPS
	if f, ok := num(body, "fps"); ok && f > 0 {
		p.fps = f
	}
	if f, ok := num(body, "max_fps_limit"); ok && f > 0 && f < p.fps {
		p.fps = f
	}
	p.width, p.height = videoDims(body)
	secs := math.Max(end-start, 0.1)
	p.outputs = []output{{media: "video", format: "mp4", w: p.width, h: p.height, seconds: math.Min(secs, maxMediaSeconds)}}
}

func (e *Emulator) planImage(p *project, body map[string]any) {
	count := 1
	if n, ok := num(body, "image_count"); ok && n >= 1 {
		count = int(math.Min(n, 16))
	}
	p.imageCount = count
	w, h := imageDims(body)
	if p.op.Name == "ai-image-upscaler" {
		if f, ok := num(body, "scale_factor"); ok && f > 0 {
			w = min(int(512*f), 4096)
			h = w
		}
	}
	media, format := "image", "png"
	if p.op.Name == "ai-gif-generator" {
		w, h = 512, 512
		switch str(body, "output_format") {
		case "mp4", "webm": // no WebM encoder: webm is served as MP4 (see README)
			media, format = "video", "mp4"
		default:
			format = "gif"
		}
	}
	for range count {
		p.outputs = append(p.outputs, output{media: media, format: format, w: w, h: h, seconds: maxMediaSeconds})
	}
}

func even(n int) int { return max(2, (n+1)&^1) }

func aspect(ar string) (a, b float64) {
	x, y, ok := strings.Cut(ar, ":")
	if !ok {
		return 1, 1
	}
	fa, err1 := strconv.ParseFloat(x, 64)
	fb, err2 := strconv.ParseFloat(y, 64)
	if err1 != nil || err2 != nil || fa <= 0 || fb <= 0 {
		return 1, 1
	}
	return fa, fb
}

func videoDims(body map[string]any) (int, int) {
	w, okw := num(body, "width")
	h, okh := num(body, "height")
	if okw && okh && w >= 2 && h >= 2 {
		return even(int(w)), even(int(h))
	}
	short := map[string]float64{"480p": 480, "720p": 720, "1080p": 1080, "4k": 2160}[str(body, "resolution")]
	if short == 0 {
		short = 720
	}
	ar := str(body, "aspect_ratio")
	if ar == "" {
		ar = "16:9"
	}
	a, b := aspect(ar)
	if a >= b {
		return even(int(math.Round(short * a / b))), even(int(short))
	}
	return even(int(short)), even(int(math.Round(short * b / a)))
}

func imageDims(body map[string]any) (int, int) {
	long := map[string]float64{"640px": 640, "1k": 1024, "2k": 2048, "4k": 4096}[str(body, "resolution")]
	if long == 0 {
		long = 1024
	}
	if m, ok := num(body, "max_resolution"); ok && m >= 64 {
		long = math.Min(m, 4096)
	}
	a, b := aspect(str(body, "aspect_ratio"))
	if a >= b {
		return even(int(long)), even(int(math.Round(long * b / a)))
	}
	return even(int(math.Round(long * a / b))), even(int(long))
}

var projectTypes = map[string]string{
	"ai-talking-photo": "TALKING_PHOTO", "ai-video-editor": "VIDEO_EDITOR", "auto-subtitle-generator": "AUTO_SUBTITLE",
	"ai-face-editor": "FACE_EDITOR", "ai-headshot-generator": "AI_HEADSHOT", "ai-image-generator": "AI_IMAGE",
	"ai-meme-generator": "AI_MEME", "ai-clothes-changer": "CLOTHES_CHANGER", "image-background-remover": "BACKGROUND_REMOVER",
	"face-swap-photo": "FACE_SWAP", "ai-image-upscaler": "IMAGE_UPSCALER", "ai-gif-generator": "AI_GIF",
	"ai-qr-code-generator": "QR_CODE", "ai-voice-generator": "VOICE_GENERATOR", "ai-voice-cloner": "VOICE_CLONER",
}

// projectType is the "type" field of a project: the spec's documented value
// where the tool name does not give it directly.
func projectType(op *catalog.Operation) string {
	if t, ok := projectTypes[op.Name]; ok {
		return t
	}
	return strings.ToUpper(strings.ReplaceAll(op.Name, "-", "_"))
}

// hash is a deterministic 64-bit hash of the seed and the parts.
func (e *Emulator) hash(parts ...string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d", e.cfg.seed)
	for _, p := range parts {
		h.Write([]byte{0})
		io.WriteString(h, p)
	}
	return h.Sum64()
}

// schedulePlan sets the lifecycle times of a new project.
func (e *Emulator) schedulePlan(p *project, text string) {
	p50 := p.op.P50
	if p.kind == catalog.KindFaceDetection {
		p50 = faceDetectionP50
	}
	r := mrand.New(mrand.NewPCG(uint64(e.cfg.seed), e.hash(p.id, "jitter")))
	nominal := time.Duration(float64(p50) * math.Exp(jitterSigma*r.NormFloat64()))
	real := time.Duration(float64(nominal) / e.cfg.speed)
	queue := time.Duration(float64(real) * queueFraction)
	p.outcome = "complete"
	for _, m := range markers {
		if strings.Contains(text, m.token) {
			p.outcome, p.errCode, p.errMsg = "error", m.code, m.message
			break
		}
	}
	if p.kind == catalog.KindFaceDetection {
		p.faces = 1
		if m := facesMarker.FindStringSubmatch(text); m != nil {
			p.faces = int(m[1][0] - '0')
		}
		if p.errCode == "no_source_face" {
			p.outcome, p.errCode, p.errMsg, p.faces = "complete", "", "", 0
		}
	} else if p.outcome == "complete" && strings.Contains(text, cancelMarker) {
		p.outcome = "canceled"
	}
	if !(p.kind == catalog.KindImage && nominal < skipStartedBelow) {
		p.startAt = p.created.Add(queue)
	}
	end := real
	if p.outcome != "complete" {
		end = queue + (real-queue)/2
	}
	p.endAt = p.created.Add(end)
}

// newID returns a cuid-like id; e.mu must be held.
func (e *Emulator) newIDLocked(prefix string) string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := []byte(prefix)
	for range 23 {
		b = append(b, alphabet[e.idRand.IntN(len(alphabet))])
	}
	return string(b)
}

// --- handlers ---

const maxBody = 1 << 20

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "could not read request body: "+err.Error())
		return nil, false
	}
	if len(b) > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, "request body larger than 1 MiB")
		return nil, false
	}
	return b, true
}

func decodeObject(b []byte) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	_ = dec.Decode(&m) // already validated
	if m == nil {
		m = map[string]any{}
	}
	return m
}

// validate runs the catalog's validation and answers 400 on failure.
func validate(w http.ResponseWriter, op *catalog.Operation, b []byte) bool {
	if err := op.ValidateJSON(b); err != nil {
		var ve *catalog.ValidationError
		if errors.As(err, &ve) {
			writeError(w, http.StatusBadRequest, ve.Summary())
		} else {
			writeError(w, http.StatusBadRequest, err.Error())
		}
		return false
	}
	return true
}

func (e *Emulator) handleCreate(w *recorder, r *http.Request, op *catalog.Operation) {
	b, ok := readBody(w, r)
	if !ok || !validate(w, op, b) {
		return
	}
	body := decodeObject(b)
	ambiguous := e.roll(e.Faults().AmbiguousCreate)

	e.mu.Lock()
	if rule, msg := op.TierRefusal(e.tier, body); rule != nil {
		e.mu.Unlock()
		writeCode(w, http.StatusPaymentRequired, "plan_upgrade_required", "Plan upgrade required: "+msg)
		return
	}
	var missing []string
	for _, fv := range fileValues(op, body) {
		switch {
		case strings.HasPrefix(fv.value, "api-assets/") && !e.assetExistsLocked(fv.value):
			missing = append(missing, fv.field+": file not found; upload it first ("+fv.value+")")
		case strings.HasPrefix(fv.value, "saved-items/"):
			if s, _ := e.savedAssetLocked(fv.value); s == nil {
				missing = append(missing, fv.field+": no saved item has this file ("+fv.value+"); see GET /v1/saved-items")
			}
		}
	}
	if len(missing) > 0 {
		e.mu.Unlock()
		writeError(w, http.StatusBadRequest, strings.Join(missing, "; "))
		return
	}
	prefix := "cm"
	if op.Kind == catalog.KindFaceDetection {
		prefix = "fd"
	}
	now := e.clock.Now()
	p := &project{id: e.newIDLocked(prefix), op: op, kind: op.Kind, created: now}
	e.plan(p, body)
	if p.estimate > e.balance {
		bal := e.balance
		e.mu.Unlock()
		writeCode(w, http.StatusPaymentRequired, "insufficient_credits", fmt.Sprintf("Not enough credits: this request needs %d credits, the balance is %d", p.estimate, bal))
		return
	}
	e.schedulePlan(p, e.markerText(op, body))
	e.balance -= p.estimate
	e.projects[p.id] = p
	e.stats.Creates++
	e.stats.CreatesByTool[op.Name]++
	if !p.startAt.IsZero() {
		e.pushLocked(event{at: p.startAt, id: p.id, kind: evStarted})
	}
	e.pushLocked(event{at: p.endAt, id: p.id, kind: evEnded})
	e.mu.Unlock()
	e.poke()

	if ambiguous {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			w.hijacked = true
			_ = conn.Close()
			return
		}
	}
	resp := map[string]any{"id": p.id, "credits_charged": p.estimate}
	switch op.Kind {
	case catalog.KindVideo:
		resp["estimated_frame_cost"] = p.estimate
	case catalog.KindImage:
		resp["frame_cost"] = p.estimate
	}
	writeJSON(w, http.StatusOK, resp)
}

// projectLocked returns the project id of op's kind, or answers 404 (an id
// of another kind is not found either, as on Magic Hour); e.mu must be held.
func (e *Emulator) projectLocked(w http.ResponseWriter, op *catalog.Operation, id string) *project {
	p := e.projects[id]
	if p == nil || p.kind != op.Kind {
		writeError(w, http.StatusNotFound, "Not Found")
		return nil
	}
	return p
}

func (e *Emulator) handleGet(w http.ResponseWriter, op *catalog.Operation, id string) {
	e.mu.Lock()
	p := e.projectLocked(w, op, id)
	if p == nil {
		e.mu.Unlock()
		return
	}
	e.stats.Polls[id]++
	now := e.clock.Now()
	e.settleLocked(p, now)
	body := e.bodyLocked(p, now, true)
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func (e *Emulator) handleDelete(w http.ResponseWriter, op *catalog.Operation, id string) {
	e.mu.Lock()
	p := e.projectLocked(w, op, id)
	if p == nil {
		e.mu.Unlock()
		return
	}
	now := e.clock.Now()
	if !catalog.Terminal(p.statusAt(now)) {
		p.canceledAt = now
	}
	e.settleLocked(p, now)
	delete(e.projects, id)
	e.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// --- response bodies ---

type downloadJSON = catalog.Download

type faceJSON struct {
	Path string `json:"path"`
	URL  string `json:"url"`
}

type faceDetectionJSON struct {
	ID             string     `json:"id"`
	CreditsCharged int64      `json:"credits_charged"`
	Status         string     `json:"status"`
	Faces          []faceJSON `json:"faces"`
}

func timestamp(t time.Time) string { return catalog.Timestamp(t) }

// bodyLocked renders the GET body of p as seen at time t. With faults set,
// download URLs may be handed out already expired.
func (e *Emulator) bodyLocked(p *project, t time.Time, faults bool) any {
	st := p.statusAt(t)
	credits := p.creditsAt(t)
	if p.kind == catalog.KindFaceDetection {
		if st == "canceled" {
			st = "error"
		}
		fd := faceDetectionJSON{ID: p.id, CreditsCharged: credits, Status: st, Faces: []faceJSON{}}
		if st == "complete" {
			for i := range p.faces {
				path := facePath(p.id, i)
				fd.Faces = append(fd.Faces, faceJSON{Path: path, URL: e.downloadURLLocked("f", p.id, i, "0-"+strconv.Itoa(i)+".png", t, faults).URL})
			}
		}
		return fd
	}
	downloads := []downloadJSON{}
	if st == "complete" {
		for i, o := range p.outputs {
			name := "output." + o.format
			if len(p.outputs) > 1 {
				name = fmt.Sprintf("output-%d.%s", i, o.format)
			}
			downloads = append(downloads, e.downloadURLLocked("p", p.id, i, name, t, faults))
		}
	}
	var perr *catalog.ProjectError
	if st == "error" {
		perr = &catalog.ProjectError{Message: p.errMsg, Code: p.errCode}
	}
	body := catalog.ProjectBody{Kind: p.kind, ID: p.id, Name: p.name, Status: st, Type: p.typ, CreatedAt: timestamp(p.created),
		Width: p.width, Height: p.height, Enabled: true, StartSeconds: p.startSec, EndSeconds: p.endSec, FPS: p.fps,
		ImageCount: p.imageCount, CreditsCharged: credits, TotalFrameCost: credits, Error: perr, Downloads: downloads}
	if len(downloads) > 0 {
		body.Download = &downloads[0]
	}
	return body
}

func facePath(id string, i int) string { return fmt.Sprintf("api-assets/%s/0-%d.png", id, i) }
