package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// readableNames gives a tool a short command name inside its group where the
// mechanical rule (drop "ai-" and "-generator") reads badly. The tool's own
// name always stays an alias.
var readableNames = map[string]string{
	"ai-clothes-changer":       "clothes",
	"ai-face-editor":           "face-edit",
	"ai-image-editor":          "edit",
	"ai-image-generator":       "generate",
	"ai-image-upscaler":        "upscale",
	"face-swap-photo":          "face-swap",
	"image-background-remover": "remove-background",
	"photo-colorizer":          "colorize",
	"ai-video-editor":          "edit",
	"animation":                "animate",
	"audio-to-video":           "from-audio",
	"auto-subtitle-generator":  "subtitles",
	"image-to-video":           "from-image",
	"text-to-video":            "from-text",
	"video-to-video":           "style",
	"ai-video-translator":      "translate",
	"ai-voice-cloner":          "clone",
	"ai-voice-generator":       "speech",
}

// commandName is the tool's command name inside its kind's group.
func commandName(op *catalog.Operation) string {
	if n, ok := readableNames[op.Name]; ok {
		return n
	}
	return mechanicalName(op.Name)
}

func mechanicalName(tool string) string {
	n := strings.TrimPrefix(tool, "ai-")
	if t := strings.TrimSuffix(n, "-generator"); t != "" {
		n = t
	}
	return n
}

var kindShort = map[catalog.Kind]string{
	catalog.KindImage: "Image tools and image projects",
	catalog.KindVideo: "Video tools and video projects",
	catalog.KindAudio: "Audio tools and audio projects",
}

// toolGroups builds the image, video and audio groups: one subcommand per
// create tool of the catalog, plus get, wait, download and delete.
func toolGroups(cat *catalog.Catalog) []*cobra.Command {
	var out []*cobra.Command
	for _, kind := range []catalog.Kind{catalog.KindImage, catalog.KindVideo, catalog.KindAudio} {
		g := &cobra.Command{
			Use:   string(kind),
			Short: kindShort[kind],
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return cmd.Help()
			},
		}
		g.AddGroup(&cobra.Group{ID: "tools", Title: "Tools:"}, &cobra.Group{ID: "projects", Title: "Projects:"})
		for _, op := range cat.Creates() {
			if op.Kind == kind {
				c := newToolCmd(op)
				c.GroupID = "tools"
				g.AddCommand(c)
			}
		}
		for _, c := range projectCmds(kind) {
			c.GroupID = "projects"
			g.AddCommand(c)
		}
		out = append(out, g)
	}
	return out
}

// toolCmd is one generated tool command.
type toolCmd struct {
	op       *catalog.Operation
	fields   []*field
	params   []string
	jsonBody string
	outDir   string
	noWait   bool
	noDL     bool
}

func newToolCmd(op *catalog.Operation) *cobra.Command {
	t := &toolCmd{op: op, fields: toolFields(op)}
	name := commandName(op)
	aliases := []string{}
	if op.Name != name {
		aliases = append(aliases, op.Name)
	}
	if m := mechanicalName(op.Name); m != name && m != op.Name && m != string(op.Kind) {
		aliases = append(aliases, m)
	}
	inferred := inferredFields(t.fields)
	for _, f := range t.fields {
		if inferred[f] != "" {
			f.Required = false
		}
	}
	cmd := &cobra.Command{
		Use:     name + " [flags]",
		Aliases: aliases,
		Short:   toolShort(op),
		Long:    toolLong(op),
		Example: "  " + t.example(),
		Args:    cobra.NoArgs,
		RunE:    t.run,
	}
	addFieldFlags(cmd, t.fields)
	for _, f := range t.fields {
		if why := inferred[f]; why != "" {
			cmd.Flags().Lookup(f.Flag).Usage += " (" + why + ")"
		}
	}
	fl := cmd.Flags()
	fl.StringVarP(&t.outDir, "output", "o", ".", "directory to save the outputs in, created if missing (existing files are kept: identical ones are not saved twice)")
	fl.Bool("overwrite", false, "replace an existing <id>-<n>.<ext> instead of saving as … (2)")
	fl.BoolVar(&t.noWait, "no-wait", false, "print the project id at once and exit; follow it later with: wait ID")
	fl.BoolVar(&t.noDL, "no-download", false, "wait, then print the output URLs instead of downloading")
	fl.StringArrayVar(&t.params, "param", nil, "set any request field: key.path=value (value is JSON or a string; repeatable)")
	fl.StringVar(&t.jsonBody, "json-body", "", "request body as JSON, or @file, or @- for stdin; flags override it")
	_ = cmd.MarkFlagDirname("output")
	return cmd
}

func toolShort(op *catalog.Operation) string {
	s := op.Summary
	if s == "" {
		s = op.Name
	}
	return fmt.Sprintf("%s (%s, usually ~%s)", s, op.Name, humanDuration(op.P50))
}

func toolLong(op *catalog.Operation) string {
	var b strings.Builder
	b.WriteString(op.Summary)
	if d := firstParagraph(op.Description); d != "" {
		b.WriteString(": " + d)
	}
	fmt.Fprintf(&b, "\n\nPOST %s; makes %s project; median processing time %s.\n", op.Path, article(string(op.Kind)), humanDuration(op.P50))
	b.WriteString("Uploads local input files, creates the project, waits for it and downloads the outputs.\n" +
		"File flags take a local path, an http(s) URL, an api-assets/… path, or - to read one from stdin\n" +
		"(a path/URL line, or the --json output of a previous hourglass command).")
	return b.String()
}

// example is a command line that sets every flag the request needs: the
// required ones, plus those the cross-field rules ask for (the video of a
// face swap whose source is inferred as "file", for instance).
func (t *toolCmd) example() string {
	need := map[*field]bool{}
	for _, f := range t.fields {
		if f.Required {
			need[f] = true
		}
	}
	for range 4 {
		body := map[string]any{}
		for f := range need {
			v := exampleValue(f)
			if f.Media != nil {
				v = "https://example.com/" + v
			}
			x, err := f.convert(v)
			if err != nil {
				x = v
			}
			if f.isArray() {
				x = []any{x}
			}
			setPath(body, f.Segs, x)
		}
		applyInferred(t.fields, body)
		err := t.op.Validate(jsonRoundTrip(body))
		ve, ok := err.(*catalog.ValidationError)
		if !ok {
			break
		}
		added := false
		for _, fe := range ve.Fields {
			if f := fieldForPath(t.fields, fe.Field); f != nil && !need[f] && strings.HasPrefix(fe.Message, "is required") {
				need[f], added = true, true
			}
		}
		if !added {
			break
		}
	}
	parts := []string{"hourglass", string(t.op.Kind), commandName(t.op)}
	for _, f := range t.fields {
		if need[f] {
			parts = append(parts, "--"+f.Flag, shellQuote(exampleValue(f)))
		}
	}
	return strings.Join(parts, " ")
}

func exampleValue(f *field) string {
	s := f.Schema
	if f.Media != nil {
		switch f.Media[0] {
		case "video":
			return "clip.mp4"
		case "audio":
			return "voice.mp3"
		}
		return "photo.png"
	}
	if e := f.enum(); len(e) > 0 {
		return e[0]
	}
	if f.isObjectArray() {
		if a, b, ok := pairProps(s.Items); ok {
			return strings.ToUpper(a) + "=" + strings.ToUpper(b)
		}
	}
	if s.Example != "" {
		var v any
		if json.Unmarshal([]byte(s.Example), &v) == nil {
			if str, ok := v.(string); ok && len(str) <= 40 {
				return str
			}
			if _, ok := v.(float64); ok {
				return s.Example
			}
		}
	}
	switch s.Type {
	case catalog.TypeNumber, catalog.TypeInteger:
		if s.Minimum != nil && *s.Minimum > 0 {
			return fmtNum(*s.Minimum)
		}
		return "5"
	case catalog.TypeBoolean:
		return "true"
	}
	return "TEXT"
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// inferredFields returns the fields the CLI fills in itself when not given,
// with a note for the help: "*_source" selectors (file when a file is given,
// youtube when a YouTube URL is, else none) and face_swap_mode.
func inferredFields(fields []*field) map[*field]string {
	out := map[*field]string{}
	for _, f := range fields {
		last := f.Segs[len(f.Segs)-1]
		switch {
		case strings.HasSuffix(last, "_source") && contains(f.Schema.Enum, "file"):
			out[f] = "inferred from the file or YouTube flag when omitted"
		case last == "face_swap_mode":
			out[f] = "individual-faces when --face-mapping is given"
		}
	}
	return out
}

// applyInferred sets the inferred selector fields that were not given.
func applyInferred(fields []*field, body map[string]any) {
	for f := range inferredFields(fields) {
		if _, ok := getPath(body, f.Segs); ok {
			continue
		}
		parent := f.Segs[:len(f.Segs)-1]
		last := f.Segs[len(f.Segs)-1]
		sib := func(name string) bool {
			_, ok := getPath(body, append(append([]string(nil), parent...), name))
			return ok
		}
		if last == "face_swap_mode" {
			if sib("face_mappings") {
				setPath(body, f.Segs, "individual-faces")
			}
			continue
		}
		prefix := strings.TrimSuffix(last, "_source")
		switch {
		case sib(prefix + "_file_path"):
			setPath(body, f.Segs, "file")
		case sib("youtube_url") && contains(f.Schema.Enum, "youtube"):
			setPath(body, f.Segs, "youtube")
		case contains(f.Schema.Enum, "none"):
			setPath(body, f.Segs, "none")
		case findField(fields, append(append([]string(nil), parent...), prefix+"_file_path")) != nil:
			// Neither given: "file", so validation names the missing file flag.
			setPath(body, f.Segs, "file")
		}
	}
}

func findField(fields []*field, segs []string) *field {
	p := strings.Join(segs, ".")
	for _, f := range fields {
		if f.Path == p {
			return f
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// buildBody assembles the request body from --json-body, --param and the
// field flags (in that order of precedence, lowest first).
func (t *toolCmd) buildBody(cmd *cobra.Command, in *inputs) (map[string]any, error) {
	body := map[string]any{}
	if t.jsonBody != "" {
		raw, err := readArg(t.jsonBody, in)
		if err != nil {
			return nil, usageErrorf("--json-body: %v", err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			return nil, usageErrorf("--json-body: not a JSON object: %v", err)
		}
	}
	for _, p := range t.params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usageErrorf("--param %q: want key.path=value, e.g. --param style.prompt='a cat'", p)
		}
		setPath(body, strings.Split(strings.TrimSpace(k), "."), parseLoose(v))
	}
	for _, f := range t.fields {
		if !cmd.Flags().Changed(f.Flag) {
			continue
		}
		var vals []any
		for _, s := range f.value.vals {
			v, err := f.convert(s)
			if err != nil {
				return nil, usageErrorf("invalid value %q for --%s: %v", s, f.Flag, err)
			}
			vals = append(vals, v)
		}
		if f.isArray() {
			// An array flag given as one JSON array is taken whole.
			if len(vals) == 1 {
				if arr, ok := parseLoose(f.value.vals[0]).([]any); ok && !f.isObjectArray() {
					vals = arr
				}
			}
			setPath(body, f.Segs, vals)
		} else {
			setPath(body, f.Segs, vals[0])
		}
	}
	applyInferred(t.fields, body)
	return body, nil
}

// readArg reads "@file", "@-" (stdin) or returns the literal text.
func readArg(s string, in *inputs) ([]byte, error) {
	switch {
	case s == "@-":
		return in.readAll()
	case strings.HasPrefix(s, "@"):
		return os.ReadFile(s[1:])
	}
	return []byte(s), nil
}

// validate checks body against the catalog and maps errors to flags;
// warnings (unknown fields passed through, URLs without an extension) go
// to warn.
func (t *toolCmd) validate(body map[string]any, warn func(format string, args ...any)) error {
	warns, err := t.op.Check(jsonRoundTrip(body))
	for _, w := range warns {
		name := w.Field
		if f := fieldForPath(t.fields, w.Field); f != nil {
			name = "--" + f.Flag
		}
		if name == "" {
			warn("warning: %s", w.Message)
		} else {
			warn("warning: %s: %s", name, w.Message)
		}
	}
	if err == nil {
		return nil
	}
	var ve *catalog.ValidationError
	if !errors.As(err, &ve) {
		return usageErrorf("%v", err)
	}
	var lines []string
	missing := false
	seen := map[string]bool{}
	for _, fe := range ve.Fields {
		f := fieldForPath(t.fields, fe.Field)
		name := fe.Field
		if f != nil {
			name = "--" + f.Flag
		}
		var line string
		switch {
		case strings.HasPrefix(fe.Message, "is required") && f == nil && len(childFlags(t.fields, fe.Field)) > 0:
			// A whole object is missing (style): name the flags that fill it.
			missing = true
			line = "missing required flag " + strings.Join(childFlags(t.fields, fe.Field), " and ")
		case strings.HasPrefix(fe.Message, "is required"):
			missing = true
			line = "missing required flag " + name
			if f != nil && f.Path != fe.Field || f == nil && fe.Field != "" {
				line += " (" + fe.Field + ")"
			}
			if rest := strings.TrimPrefix(fe.Message, "is required"); rest != "" {
				line += rest
			}
		case fe.Field == "":
			line = fe.Message
		default:
			line = "invalid " + name + ": " + fe.Message
			if f != nil && len(f.enum()) > 12 && strings.Contains(fe.Message, "must be one of") {
				got := fmt.Sprint(valueAt(body, fe.Field))
				line = fmt.Sprintf("invalid %s: %q is not one of the %d accepted values; see `hourglass %s %s --help` or press Tab after %s",
					name, got, len(f.enum()), t.op.Kind, commandName(t.op), name)
				if near := nearValues(f.enum(), got); len(near) > 0 {
					line += "; did you mean " + strings.Join(near, ", ") + "?"
				}
			}
		}
		if !seen[line] {
			seen[line] = true
			lines = append(lines, line)
		}
	}
	msg := strings.Join(lines, "\n  ")
	if len(lines) > 1 {
		msg = "invalid request:\n  " + msg
	}
	for _, fe := range ve.Fields {
		if fe.OutOfCatalog {
			msg += fmt.Sprintf("\n(checked against the catalog of %s; the live API may accept newer values: use a newer catalog with `hourglass catalog update` or --spec FILE|URL, or skip the local checks with --no-validate)", ve.CatalogDate)
			break
		}
	}
	if missing {
		msg += "\nexample: " + t.example()
	}
	return &exitError{code: ExitUsage, msg: msg}
}

// childFlags are the flags of the required fields inside the object at
// path (all of its fields when none is required).
func childFlags(fields []*field, path string) []string {
	var req, all []string
	for _, f := range fields {
		if !strings.HasPrefix(f.Path, path+".") {
			continue
		}
		all = append(all, "--"+f.Flag)
		if f.Required {
			req = append(req, "--"+f.Flag)
		}
	}
	if len(req) > 0 {
		return req
	}
	if len(all) > 3 {
		all = all[:3]
	}
	return all
}

func valueAt(body map[string]any, path string) any {
	v, _ := getPath(body, strings.Split(stripIndexes(path), "."))
	return v
}

// jsonRoundTrip normalizes the body to what encoding/json decodes
// (json.Number stays), so validation sees exactly what will be sent.
func jsonRoundTrip(body map[string]any) any {
	b, err := json.Marshal(body)
	if err != nil {
		return body
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return body
	}
	return v
}

// firstParagraph is the one-line help of a spec description.
func firstParagraph(d string) string { return catalog.Summary(d) }

func article(kind string) string {
	if kind == "image" || kind == "audio" {
		return "an " + kind
	}
	return "a " + kind
}

// nearValues suggests up to 5 enum values close to got: equal ignoring
// case, or containing it, or sharing a word with it.
func nearValues(enum []string, got string) []string {
	g := strings.ToLower(strings.TrimSpace(got))
	if g == "" {
		return nil
	}
	var out []string
	add := func(v string) {
		if len(out) < 5 && !contains(out, strconv.Quote(v)) {
			out = append(out, strconv.Quote(v))
		}
	}
	for _, v := range enum {
		if strings.EqualFold(v, g) {
			add(v)
		}
	}
	for _, v := range enum {
		if strings.Contains(strings.ToLower(v), g) {
			add(v)
		}
	}
	words := strings.Fields(g)
	for _, v := range enum {
		for _, w := range strings.Fields(strings.ToLower(v)) {
			if len(w) > 2 && contains(words, w) {
				add(v)
			}
		}
	}
	return out
}
