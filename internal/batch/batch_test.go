package batch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/internal/media"
	"github.com/hourglasshq/hourglass/magichour"
)

const testSpeed = 2000

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// imageLines returns n JSONL lines of ai-image-generator jobs; the names
// listed in fail get a failure marker.
func imageLines(n int, fail map[int]string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("img %d", i)
		if m := fail[i]; m != "" {
			name += " " + m
		}
		fmt.Fprintf(&b, `{"tool":"ai-image-generator","name":%q,"params":{"image_count":1,"style":{"prompt":"lighthouse %d"}}}`+"\n", name, i)
	}
	return b.String()
}

type env struct {
	t   *testing.T
	srv *emulator.Server
	c   *magichour.Client
}

func newEnv(t *testing.T, opts ...emulator.Option) *env {
	t.Helper()
	srv := emulator.NewServer(t, append([]emulator.Option{emulator.WithSpeed(testSpeed), emulator.WithOutputSize(2 << 10)}, opts...)...)
	c, err := magichour.NewClient(magichour.WithAPIKey(srv.APIKey), magichour.WithBaseURL(srv.URL),
		magichour.WithRetry(magichour.RetryPolicy{MaxAttempts: 3, BaseDelay: 0, MaxDelay: 0}))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, c: c}
}

func (e *env) opts(input, out string) Options {
	return Options{
		Input: input, OutDir: out, Concurrency: 4, TimeScale: testSpeed,
		Backend: NewAPIBackend(e.c, func(tool magichour.Tool) []magichour.WaitOption {
			return []magichour.WaitOption{magichour.WithTool(tool), magichour.WithTimeScale(testSpeed)}
		}),
		Estimate: func(string, json.RawMessage) int64 { return 10 },
	}
}

func (e *env) creates() int { return e.srv.Emulator.Stats().Creates }

func readManifest(t *testing.T, path string) []Entry {
	t.Helper()
	es, err := ReadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// checkComplete checks that every entry completed with its outputs on
// disk, matching their recorded size and sha256.
func checkComplete(t *testing.T, es []Entry) {
	t.Helper()
	for _, e := range es {
		if e.Status != StatusComplete || e.JobID == "" || len(e.Outputs) == 0 {
			t.Fatalf("line %d: %+v", e.Line, e)
		}
		for _, o := range e.Outputs {
			b, err := os.ReadFile(o.Path)
			if err != nil {
				t.Fatalf("line %d: %v", e.Line, err)
			}
			sum := sha256.Sum256(b)
			if int64(len(b)) != o.Size || hex.EncodeToString(sum[:]) != o.SHA256 {
				t.Fatalf("line %d: %s has %d bytes, manifest says %d %s", e.Line, o.Path, len(b), o.Size, o.SHA256)
			}
		}
	}
}

func TestParseJSONLReportsEveryBadLine(t *testing.T) {
	t.Parallel()
	src := strings.Join([]string{
		`{"tool":"ai-image-generator","params":{"image_count":1,"style":{"prompt":"ok"}}}`,
		``,
		`{"tool":"no-such-tool","params":{}}`,
		`not json`,
		`{"tool":"ai-image-generator","params":{"image_count":99,"style":{"prompt":"x"}}}`,
		`{"tool":"ai-image-generator","params":[1]}`,
		`{"tool":"ai-image-generator","params":{"image_count":1,"style":{"prompt":"k"}},"key":"a","extra":1}`,
		`{"tool":"ai-image-generator","params":{"image_count":1,"style":{"prompt":"k2"}},"key":"a"}`,
		`{"params":{}}`,
	}, "\n")
	in, err := ParseJSONL(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Records) != 8 {
		t.Fatalf("%d records, want 8 (the blank line is not one)", len(in.Records))
	}
	got := map[int]string{}
	for _, e := range in.Errors() {
		got[e.Line] += e.Field + "|"
	}
	want := map[int]string{3: "tool|", 4: "|", 5: "params.image_count|", 6: "params|", 7: "extra|", 8: "key|", 9: "tool|"}
	for line, fields := range want {
		if got[line] != fields {
			t.Errorf("line %d: fields %q, want %q (all: %v)", line, got[line], fields, in.Errors())
		}
	}
	if len(got) != len(want) {
		t.Errorf("errors on lines %v, want %v", got, want)
	}
	if !in.Records[0].Valid() || !strings.HasPrefix(in.Records[0].Line.Key, "h-") {
		t.Errorf("line 1: %+v", in.Records[0])
	}
}

func TestParseKeysStableAndRepeatsDistinct(t *testing.T) {
	t.Parallel()
	a := `{"tool":"ai-image-generator","params":{"style":{"prompt":"p"},"image_count":1}}`
	b := `{"params":{"image_count":1,"style":{"prompt":"p"}},"tool":"ai-image-generator"}` // same content, other order
	in, err := ParseJSONL(strings.NewReader(a + "\n" + b + "\n" + a + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := []string{in.Records[0].Line.Key, in.Records[1].Line.Key, in.Records[2].Line.Key}
	if k[0] == k[1] || k[1] == k[2] || k[0] == k[2] || k[1] != k[0]+"-2" || k[2] != k[0]+"-3" {
		t.Fatalf("keys %v: want the same hash, numbered by occurrence", k)
	}
	in2, _ := ParseJSONL(strings.NewReader(b + "\n"))
	if in2.Records[0].Line.Key != k[0] {
		t.Fatalf("key of the same content differs across files: %s vs %s", in2.Records[0].Line.Key, k[0])
	}
}

func TestParseCSVTypedBySchema(t *testing.T) {
	t.Parallel()
	src := "tool,key,name,style.prompt,image_count,aspect_ratio,end_seconds\n" +
		"ai-image-generator,k1,first,a cat,2,1:1,\n" +
		"ai-image-generator,k2,,\"a dog, running\",1,,\n" +
		"ai-image-generator,k3,,x,two,,\n" +
		"text-to-video,k4,,waves,,,5\n" + // image_count is not a text-to-video parameter, but empty
		"ai-image-generator,k5,,y,1,7:3,\n"
	in, err := ParseCSV(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Records) != 5 {
		t.Fatalf("%d records", len(in.Records))
	}
	var p map[string]any
	_ = json.Unmarshal(in.Records[0].Line.Params, &p)
	var v map[string]any
	_ = json.Unmarshal(in.Records[3].Line.Params, &v)
	if v["end_seconds"] != float64(5) {
		t.Fatalf("line 5 params %s", in.Records[3].Line.Params)
	}
	if p["image_count"] != float64(2) || p["style"].(map[string]any)["prompt"] != "a cat" || p["name"] != "first" {
		t.Fatalf("line 2 params %s", in.Records[0].Line.Params)
	}
	if !in.Records[1].Valid() || in.Records[1].Line.N != 3 {
		t.Fatalf("line 3: %+v", in.Records[1])
	}
	errs := in.Errors()
	if len(errs) < 2 || errs[0].Line != 4 || errs[0].Field != "params.image_count" || !strings.Contains(errs[0].Message, "integer") {
		t.Fatalf("errors %v", errs)
	}
	found := false
	for _, e := range errs {
		if e.Line == 6 && e.Field == "params.aspect_ratio" {
			found = true
		}
		if e.Line == 5 {
			t.Errorf("line 5: %v", e)
		}
	}
	if !found {
		t.Fatalf("no enum error on line 6: %v", errs)
	}
}

func TestRunInvalidCreatesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := writeFile(t, "b.jsonl", imageLines(3, nil)+`{"tool":"ai-image-generator","params":{"image_count":0}}`+"\n")
	_, err := Execute(context.Background(), e.opts(in, t.TempDir()))
	var ie *InvalidError
	if !errors.As(err, &ie) || len(ie.Lines) < 2 || ie.Lines[0].Line != 4 {
		t.Fatalf("err %v", err)
	}
	if e.creates() != 0 {
		t.Fatalf("%d creates", e.creates())
	}
	if _, err := os.Stat(DefaultManifestPath(in, false)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("manifest written for an invalid batch: %v", err)
	}

	// --skip-invalid runs the rest; the manifest still has one line each.
	o := e.opts(in, t.TempDir())
	o.SkipInvalid = true
	sum, err := Execute(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	es := readManifest(t, sum.Manifest)
	if len(es) != 4 || es[3].Status != StatusInvalid || es[3].Error == nil || e.creates() != 3 {
		t.Fatalf("creates %d, manifest %+v", e.creates(), es)
	}
	checkComplete(t, es[:3])
}

func TestRunCompletesAndRerunCreatesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := writeFile(t, "b.jsonl", imageLines(12, nil))
	out := t.TempDir()
	var progress bytes.Buffer
	o := e.opts(in, out)
	o.Progress = &progress
	o.NameTemplate = "{name}/{line}-{n}.{ext}"
	sum, err := Execute(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.OK() || sum.Counts[StatusComplete] != 12 || e.creates() != 12 {
		t.Fatalf("summary %+v, creates %d\n%s", sum.Counts, e.creates(), progress.String())
	}
	es := readManifest(t, sum.Manifest)
	if len(es) != 12 {
		t.Fatalf("%d manifest lines", len(es))
	}
	checkComplete(t, es)
	if want := filepath.Join(out, "img_1", "1-0.png"); es[0].Outputs[0].Path != want {
		t.Fatalf("output path %s, want %s", es[0].Outputs[0].Path, want)
	}
	if !strings.Contains(progress.String(), "total") || !strings.Contains(progress.String(), "12/12 done") {
		t.Fatalf("no summary/progress:\n%s", progress.String())
	}
	if _, err := os.Stat(journalPath(sum.Manifest)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("journal left after a clean run: %v", err)
	}

	// Same file again: nothing is created; a deleted output is fetched again.
	os.Remove(es[4].Outputs[0].Path)
	sum, err = Execute(context.Background(), e.opts(in, out))
	if err != nil {
		t.Fatal(err)
	}
	if e.creates() != 12 || sum.Counts[StatusComplete] != 12 {
		t.Fatalf("rerun: creates %d, %+v", e.creates(), sum.Counts)
	}
	checkComplete(t, readManifest(t, sum.Manifest))
}

func TestRunResumesAfterInterrupt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.WithSpeed(200)) // slower: jobs are still rendering when we stop
	in := writeFile(t, "b.jsonl", imageLines(20, nil))
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	o := e.opts(in, out)
	o.Concurrency = 3
	o.Backend = NewAPIBackend(e.c, func(tool magichour.Tool) []magichour.WaitOption {
		return []magichour.WaitOption{magichour.WithTool(tool), magichour.WithTimeScale(200),
			magichour.WithStatusCallback(func(*magichour.Project) {
				if e.creates() >= 5 {
					cancel() // Ctrl-C once a few jobs exist
				}
			})}
	})
	sum, err := Execute(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	first := e.creates()
	if !sum.Interrupted || first >= 20 || first < 5 {
		t.Fatalf("interrupted=%v after %d creates", sum.Interrupted, first)
	}
	es := readManifest(t, sum.Manifest)
	if len(es) != 20 {
		t.Fatalf("%d manifest lines", len(es))
	}
	created := 0
	for _, x := range es {
		if x.JobID != "" {
			created++
		}
		if x.Status == StatusCreating || x.Status == StatusOutcomeUnknown {
			t.Fatalf("line %d left %s after Ctrl-C", x.Line, x.Status)
		}
	}
	if created != first {
		t.Fatalf("manifest has %d job ids, emulator %d creates", created, first)
	}
	sum, err = Execute(context.Background(), e.opts(in, out))
	if err != nil {
		t.Fatal(err)
	}
	if e.creates() != 20 || sum.Counts[StatusComplete] != 20 {
		t.Fatalf("after resume: %d creates, %+v", e.creates(), sum.Counts)
	}
	checkComplete(t, readManifest(t, sum.Manifest))
}

// A crash leaves the journal; a line whose create was on the wire is
// never resent, a line whose job exists is waited for, not created again.
func TestRunAfterCrashUsesJournal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := writeFile(t, "b.jsonl", imageLines(4, nil))
	parsed, err := ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := e.c.Create(context.Background(), magichour.ToolAIImageGenerator, []byte(parsed.Records[1].Line.Params))
	if err != nil {
		t.Fatal(err)
	}
	manifest := DefaultManifestPath(in, false)
	var j bytes.Buffer
	for _, x := range []Entry{
		{Line: 1, Key: parsed.Records[0].Line.Key, Status: StatusCreating, Via: "api", Attempt: 1},
		{Line: 2, Key: parsed.Records[1].Line.Key, Status: StatusSubmitted, Via: "api", JobID: cr.ID, Kind: "image", Attempt: 1},
	} {
		b, _ := json.Marshal(x)
		j.Write(append(b, '\n'))
	}
	j.WriteString(`{"line":3,"key":"torn`) // a write cut by the crash
	if err := os.WriteFile(journalPath(manifest), j.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := Execute(context.Background(), e.opts(in, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	es := readManifest(t, sum.Manifest)
	if es[0].Status != StatusOutcomeUnknown || es[1].Status != StatusComplete || es[1].JobID != cr.ID {
		t.Fatalf("manifest %+v", es)
	}
	if e.creates() != 3 { // ours + lines 3 and 4; line 1 is not resent
		t.Fatalf("%d creates", e.creates())
	}
	// --resend-unknown creates line 1 (at the risk of a second charge).
	o := e.opts(in, t.TempDir())
	o.ResendUnknown = true
	sum, err = Execute(context.Background(), o)
	if err != nil || sum.Counts[StatusComplete] != 4 || e.creates() != 4 {
		t.Fatalf("resend: %v %+v creates %d", err, sum.Counts, e.creates())
	}
}

func TestRunAmbiguousCreateIsNotResent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.WithFaults(emulator.Faults{AmbiguousCreate: 1}))
	in := writeFile(t, "b.jsonl", imageLines(2, nil))
	sum, err := Execute(context.Background(), e.opts(in, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts[StatusOutcomeUnknown] != 2 || e.creates() != 2 {
		t.Fatalf("%+v, %d creates", sum.Counts, e.creates())
	}
	_ = e.srv.Emulator.SetFaults(emulator.Faults{})
	if _, err := Execute(context.Background(), e.opts(in, t.TempDir())); err != nil || e.creates() != 2 {
		t.Fatalf("rerun resent: %v, %d creates", err, e.creates())
	}
}

func TestRunCreditCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := writeFile(t, "b.jsonl", imageLines(10, nil))
	o := e.opts(in, t.TempDir())
	per := chargeOf(t, e)
	o.Estimate = func(string, json.RawMessage) int64 { return per }
	o.MaxCredits = 4*per + per/2 // 4 fit, line 5 would exceed
	base := e.creates()
	var out bytes.Buffer
	o.Progress = &out
	sum, err := Execute(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.CapLine != 5 || sum.Counts[StatusComplete] != 4 || sum.Counts[StatusPending] != 6 || e.creates()-base != 4 {
		t.Fatalf("cap line %d, %+v, %d creates\n%s", sum.CapLine, sum.Counts, e.creates(), out.String())
	}
	if !strings.Contains(out.String(), "before line 5") {
		t.Fatalf("output:\n%s", out.String())
	}
	// The cap holds across runs: what was spent counts.
	o.Progress = nil
	if sum, err = Execute(context.Background(), o); err != nil || e.creates()-base != 4 || sum.Credits > o.MaxCredits {
		t.Fatalf("second run under the same cap: %v, %d creates", err, e.creates()-base)
	}
	o.MaxCredits = 1000
	if sum, err = Execute(context.Background(), o); err != nil || sum.Counts[StatusComplete] != 10 || e.creates()-base != 10 {
		t.Fatalf("raised cap: %v %+v %d creates", err, sum.Counts, e.creates())
	}
}

func TestRunCapAsItGoes(t *testing.T) {
	t.Parallel()
	// The estimate says 1 but Magic Hour charges more: the cap counts
	// the charges as they come and stops before the line that would exceed.
	e := newEnv(t)
	in := writeFile(t, "b.jsonl", imageLines(6, nil))
	o := e.opts(in, t.TempDir())
	o.Concurrency = 1
	o.Estimate = func(string, json.RawMessage) int64 { return 1 }
	per := chargeOf(t, e)
	o.MaxCredits = 2 * per // line 3's estimate (1) no longer fits once lines 1 and 2 are charged
	sum, err := Execute(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts[StatusComplete] != 2 || sum.CapLine != 3 || sum.Credits > o.MaxCredits {
		t.Fatalf("charge %d, cap %d: %+v cap line %d credits %d", per, o.MaxCredits, sum.Counts, sum.CapLine, sum.Credits)
	}
}

// chargeOf is what the emulator charges for one image line.
func chargeOf(t *testing.T, e *env) int64 {
	t.Helper()
	cr, err := e.c.Create(context.Background(), magichour.ToolAIImageGenerator, map[string]any{"image_count": 1, "style": map[string]any{"prompt": "probe"}})
	if err != nil {
		t.Fatal(err)
	}
	return int64(cr.CreditsCharged)
}

func TestDryRunCreatesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := writeFile(t, "b.jsonl", imageLines(5, nil))
	out := filepath.Join(t.TempDir(), "out")
	o := e.opts(in, out)
	o.DryRun, o.MaxCredits = true, 30
	var w bytes.Buffer
	o.Progress = &w
	sum, err := Execute(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if e.creates() != 0 || sum.EstimatedCredits != 30 || sum.CapLine != 4 {
		t.Fatalf("creates %d, %+v", e.creates(), sum)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("dry run made the output folder")
	}
	if _, err := os.Stat(sum.Manifest); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("dry run wrote a manifest")
	}
	if !strings.Contains(w.String(), "nothing was created") || !strings.Contains(w.String(), "before line 4") {
		t.Fatalf("output:\n%s", w.String())
	}
}

func TestRetryFailedFromManifest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := writeFile(t, "b.jsonl", imageLines(6, map[int]string{2: "boom", 5: "badparams"}))
	out := t.TempDir()
	sum, err := Execute(context.Background(), e.opts(in, out))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts[StatusError] != 2 || sum.Counts[StatusComplete] != 4 {
		t.Fatalf("%+v", sum.Counts)
	}
	es := readManifest(t, sum.Manifest)
	if es[1].Error == nil || es[1].Error.Code != "unknown_error" {
		t.Fatalf("line 2: %+v", es[1])
	}
	// The manifest is a batch file: fed back without --retry-failed it
	// does nothing; with it, only the failed lines run again.
	o := e.opts(sum.Manifest, out)
	if _, err := Execute(context.Background(), o); err != nil || e.creates() != 6 {
		t.Fatalf("manifest rerun: %v, %d creates", err, e.creates())
	}
	o.RetryFailed = true
	sum2, err := Execute(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if sum2.Manifest != sum.Manifest || e.creates() != 8 {
		t.Fatalf("manifest %s (want %s), %d creates", sum2.Manifest, sum.Manifest, e.creates())
	}
	es2 := readManifest(t, sum.Manifest)
	if len(es2) != 6 || es2[1].Attempt != 2 || es2[1].JobID == es[1].JobID || es2[0].JobID != es[0].JobID {
		t.Fatalf("after retry: %+v", es2)
	}
}

func TestToolConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b strings.Builder
	b.WriteString(imageLines(4, nil))
	for i := range 3 {
		fmt.Fprintf(&b, `{"tool":"ai-voice-generator","params":{"style":{"prompt":"hello %d","voice_name":"Elon Musk"}}}`+"\n", i)
	}
	in := writeFile(t, "b.jsonl", b.String())
	o := e.opts(in, t.TempDir())
	o.ToolConcurrency = map[string]int{"ai-image-generator": 1}
	sum, err := Execute(context.Background(), o)
	if err != nil || sum.Counts[StatusComplete] != 7 {
		t.Fatalf("%v %+v", err, sum)
	}
	o.ToolConcurrency = map[string]int{"nope": 1}
	if _, err := Execute(context.Background(), o); err == nil {
		t.Fatal("unknown tool in --tool-concurrency accepted")
	}
}

func TestNameTemplate(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"../x", "/abs/{n}", "{nope}", ""} {
		if _, err := newNamer(bad); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
	nm, _ := newNamer("{name}.{ext}")
	if got := nm.render(3, "k", "a/b c", "id", 1, "png"); got != "a_b_c-1.png" {
		t.Errorf("render: %q", got)
	}
	in, _ := ParseJSONL(strings.NewReader(imageLines(2, nil) + `{"tool":"ai-image-generator","name":"img 1","params":{"image_count":1,"style":{"prompt":"other"}}}` + "\n"))
	clashes := nm.checkUnique(in.Records)
	if len(clashes) != 1 || clashes[0].err.Line != 3 {
		t.Fatalf("clashes %+v", clashes)
	}
}

func TestSecondRunOfTheSameBatchIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := writeFile(t, "b.jsonl", imageLines(2, nil))
	parsed, err := ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openState(DefaultManifestPath(in, false), parsed.Records, false) // a run in progress
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Execute(context.Background(), e.opts(in, t.TempDir())); !errors.Is(err, ErrLocked) || e.creates() != 0 {
		t.Fatalf("second run: %v, %d creates", err, e.creates())
	}
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	if sum, err := Execute(context.Background(), e.opts(in, t.TempDir())); err != nil || sum.Counts[StatusComplete] != 2 {
		t.Fatalf("after the first run ended: %v", err)
	}
}

// Local input files are checked when the file is read (they must exist and
// have an extension the field takes) and uploaded just before the create.
func TestLocalInputFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	png, err := media.Image("png", 32, 32, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "shots"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a.png", "b.png"} {
		if err := os.WriteFile(filepath.Join(dir, "shots", n), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	line := `{"tool":"image-background-remover","params":{"assets":{"image_file_path":%q}}}` + "\n"
	in := filepath.Join(dir, "b.jsonl")
	os.WriteFile(in, []byte(fmt.Sprintf(line, "shots/a.png")+fmt.Sprintf(line, "shots/b.png")+fmt.Sprintf(line, "missing.png")+fmt.Sprintf(line, "notes.txt")), 0o644)
	_, err = Execute(context.Background(), e.opts(in, t.TempDir()))
	var ie *InvalidError
	if !errors.As(err, &ie) || len(ie.Lines) != 2 || ie.Lines[0].Line != 3 || ie.Lines[0].Field != "params.assets.image_file_path" || ie.Lines[1].Line != 4 {
		t.Fatalf("err %v", err)
	}
	o := e.opts(in, t.TempDir())
	o.SkipInvalid = true
	sum, err := Execute(context.Background(), o)
	if err != nil || sum.Counts[StatusComplete] != 2 {
		t.Fatalf("%v %+v", err, sum)
	}
	if st := e.srv.Emulator.Stats(); st.Uploads != 2 || st.Creates != 2 {
		t.Fatalf("uploads %d, creates %d", st.Uploads, st.Creates)
	}
	es := readManifest(t, sum.Manifest)
	if !strings.Contains(string(es[0].Params), "shots/a.png") || es[0].Key == es[1].Key {
		t.Fatalf("manifest keeps the local path and one key per file: %+v", es[:2])
	}
	// Through a gateway, local files are refused before anything is sent
	// (nothing listens at this address).
	gb, err := NewGatewayBackend("http://127.0.0.1:1", "key", nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	o.Backend, o.Manifest = gb, filepath.Join(dir, "gw.manifest.jsonl")
	if _, err := Execute(context.Background(), o); !errors.As(err, &ie) || len(ie.Lines) != 2 || !strings.Contains(ie.Lines[0].Message, "local file") {
		t.Fatalf("gateway with local files: %v", err)
	}
}
