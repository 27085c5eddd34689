package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// The submit form of a tool is generated from its catalog request schema:
// one control per leaf field, named by its dotted path ("style.prompt"),
// nested objects as fieldsets. The form is turned back into the API's
// params, checked with the catalog's validation (the API's own), files are
// uploaded through the gateway, and the job is submitted exactly as
// POST /api/jobs would.

type option struct {
	Value    string
	Label    string
	Selected bool
}

type formField struct {
	Name        string // dotted path
	ID          string
	Label       string
	Help        string
	Kind        string // text, textarea, select, number, checkbox, file, files, json, group
	Required    bool
	Options     []option
	Min, Max    string
	Step        string
	MinLength   int
	MaxLength   int
	Value       string
	Checked     bool
	Accept      string
	Media       string
	Error       string
	Placeholder string
	Children    []*formField
}

type toolView struct {
	Name    string
	Summary string
	Help    string
	Kind    string
	P50     string
	Files   int
}

type submitView struct {
	Tool       toolView
	Fields     []*formField
	Errors     []string // not tied to a field
	FieldErrs  []fieldLink
	Idem       string
	CanSubmit  bool
	AdminNote  string
	Resubmit   bool
	FileReused bool
}

type fieldLink struct {
	ID, Label, Message string
}

type submitIndexView struct {
	Groups []toolGroup
	Admin  bool
}

type toolGroup struct {
	Kind  string
	Tools []toolView
}

// help returns the first paragraph of a spec description, plain.
func help(desc string, n int) string { return short(catalog.Summary(desc), n) }

// fieldHelp is a field's help text: the first paragraph of its
// description as plain text. A paragraph that is a bullet list ("* `v1` -
// ...") reads as one sentence, its items separated by "; ", with no
// Markdown marks left.
func fieldHelp(desc string, n int) string {
	items, ok := bulletItems(desc)
	if !ok {
		return help(desc, n)
	}
	return short(strings.Join(items, "; "), n)
}

// bulletItems returns the items of a description's first paragraph when it
// is a bullet list.
func bulletItems(desc string) ([]string, bool) {
	lines := strings.Split(catalog.FirstParagraph(desc), "\n")
	var items []string
	for _, l := range lines {
		it, ok := strings.CutPrefix(l, "- ")
		if !ok {
			if len(items) == 0 {
				return nil, false
			}
			items[len(items)-1] += " " + l // a continuation line
			continue
		}
		items = append(items, strings.TrimSpace(it))
	}
	return items, len(items) > 0
}

// enumLabels maps enum values to "value — explanation" when the
// description lists them as bullets ("* `v1` - May preserve ...").
func enumLabels(desc string, enum []string) map[string]string {
	items, ok := bulletItems(desc)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, it := range items {
		v, text, ok := strings.Cut(it, " - ")
		if !ok || !slices.Contains(enum, strings.TrimSpace(v)) {
			continue
		}
		out[strings.TrimSpace(v)] = strings.TrimSpace(v) + " — " + short(strings.TrimSpace(text), 90)
	}
	return out
}

func makeToolView(op *catalog.Operation) toolView {
	tv := toolView{Name: op.Name, Summary: op.Summary, Help: help(op.Description, 160), Kind: string(op.Kind), Files: len(op.Files)}
	if op.P50 > 0 {
		tv.P50 = fmtDuration(op.P50)
	}
	return tv
}

func (d *Dashboard) handleSubmitIndex(w http.ResponseWriter, r *http.Request, u *user) {
	groups := map[string]*toolGroup{}
	for _, op := range d.gw.Catalog().Creates() {
		g := groups[string(op.Kind)]
		if g == nil {
			g = &toolGroup{Kind: string(op.Kind)}
			groups[string(op.Kind)] = g
		}
		g.Tools = append(g.Tools, makeToolView(op))
	}
	v := submitIndexView{Admin: u.Admin}
	for _, k := range []string{"video", "image", "audio"} {
		if g := groups[k]; g != nil {
			v.Groups = append(v.Groups, *g)
		}
	}
	d.render(w, r, http.StatusOK, "submit_index", view{Title: "Submit a job", Nav: "submit", Data: v})
}

// lookupTool is the create tool name of the gateway's catalog in use (the
// forms follow a refreshed spec), or nil.
func (d *Dashboard) lookupTool(name string) *catalog.Operation {
	op := d.gw.Catalog().Lookup(name)
	if op == nil || op.Role != catalog.RoleCreate || op.Name != name {
		return nil
	}
	switch op.Kind {
	case catalog.KindVideo, catalog.KindImage, catalog.KindAudio:
		return op
	}
	return nil
}

func (d *Dashboard) handleSubmitForm(w http.ResponseWriter, r *http.Request, u *user) {
	op := d.lookupTool(r.PathValue("tool"))
	if op == nil {
		d.notFound(w, r, "There is no tool "+r.PathValue("tool")+".")
		return
	}
	sv := submitView{Tool: makeToolView(op), Fields: buildFields(op.Request, "", nil), Idem: "dash-" + randomString(12), CanSubmit: u.Tenant != nil}
	if u.Admin {
		sv.AdminNote = "The admin key cannot submit jobs (as in the API): sign in with a tenant key to submit."
	}
	d.render(w, r, http.StatusOK, "submit_form", view{Title: op.Summary, Nav: "submit", Data: sv})
}

// buildFields makes the controls of an object schema. values, when set,
// refills them with what the user sent.
func buildFields(s *catalog.Schema, prefix string, values map[string][]string) []*formField {
	if s == nil {
		return nil
	}
	var out []*formField
	for _, p := range s.Properties {
		name := p.Name
		if prefix != "" {
			name = prefix + "." + p.Name
		}
		ps := p.Schema
		f := &formField{Name: name, ID: "f-" + strings.NewReplacer(".", "-", "_", "-").Replace(name), Label: titleCase(p.Name),
			Help: fieldHelp(ps.Description, 240), Required: s.IsRequired(p.Name)}
		v, has := values[name]
		val := ""
		if has && len(v) > 0 {
			val = v[len(v)-1]
		}
		switch {
		case ps.Type == catalog.TypeObject:
			f.Kind = "group"
			f.Children = buildFields(ps, name, values)
		case ps.File != nil:
			f.Kind, f.Media = "file", strings.Join(ps.File.Media, ", ")
			f.Accept = accept(ps.File.Media)
			f.Value = val
			f.Placeholder = "https://… or api-assets/…"
		case ps.Type == catalog.TypeArray && ps.Items != nil && ps.Items.File != nil:
			f.Kind, f.Media = "files", strings.Join(ps.Items.File.Media, ", ")
			f.Accept = accept(ps.Items.File.Media)
			f.Value = val
			f.Placeholder = "one URL per line"
		case ps.Type == catalog.TypeArray && ps.Items != nil && ps.Items.Type != catalog.TypeObject:
			f.Kind, f.Value, f.Placeholder = "textarea", val, "one value per line"
		case ps.Type == catalog.TypeArray:
			f.Kind, f.Value = "json", val
			f.Placeholder = "JSON array, e.g. " + short(exampleJSON(ps), 120)
		case len(ps.Enum) > 0:
			f.Kind = "select"
			if isInferredSource(p.Name, ps) {
				f.Required = false // filled in from the file or URL given
			}
			sel := val
			if !has {
				sel = ""
			}
			if !f.Required || ps.Default == "" {
				lbl := "— default —"
				if ps.Default != "" {
					lbl = "— default (" + strings.Trim(ps.Default, `"`) + ") —"
				}
				if f.Required {
					lbl = "— choose —"
				}
				if isInferredSource(p.Name, ps) {
					lbl = "— from the file or URL given —"
				}
				f.Options = append(f.Options, option{Value: "", Label: lbl, Selected: sel == ""})
			}
			labels := enumLabels(ps.Description, ps.Enum)
			if len(labels) > 0 {
				f.Help = "" // the options carry it
			}
			for _, e := range ps.Enum {
				lbl := e
				if l, ok := labels[e]; ok {
					lbl = l
				}
				f.Options = append(f.Options, option{Value: e, Label: lbl, Selected: sel == e || (!has && f.Required && strings.Trim(ps.Default, `"`) == e)})
			}
		case ps.Type == catalog.TypeBoolean:
			f.Kind = "checkbox"
			if has {
				f.Checked = val == "true"
			} else {
				f.Checked = ps.Default == "true"
			}
		case ps.Type == catalog.TypeNumber || ps.Type == catalog.TypeInteger:
			f.Kind, f.Value = "number", val
			if ps.Minimum != nil {
				f.Min = strconv.FormatFloat(*ps.Minimum, 'f', -1, 64)
			}
			if ps.Maximum != nil {
				f.Max = strconv.FormatFloat(*ps.Maximum, 'f', -1, 64)
			}
			f.Step = "any"
			if ps.Type == catalog.TypeInteger {
				f.Step = "1"
			}
			if ps.MultipleOf != nil {
				f.Step = strconv.FormatFloat(*ps.MultipleOf, 'f', -1, 64)
			}
			if ps.Default != "" {
				f.Placeholder = "default " + ps.Default
			}
		default:
			f.Kind, f.Value = "text", val
			if ps.MaxLength != nil {
				f.MaxLength = *ps.MaxLength
			}
			if (ps.MaxLength != nil && *ps.MaxLength > 200) || strings.Contains(p.Name, "prompt") || strings.Contains(p.Name, "text") || strings.Contains(p.Name, "script") {
				f.Kind = "textarea"
			}
			if ps.Default != "" {
				f.Placeholder = strings.Trim(ps.Default, `"`)
			} else if ps.Example != "" {
				f.Placeholder = "e.g. " + short(strings.Trim(ps.Example, `"`), 80)
			}
		}
		out = append(out, f)
	}
	return out
}

func exampleJSON(s *catalog.Schema) string {
	if s.Example != "" {
		return s.Example
	}
	b, _ := json.Marshal([]any{})
	return string(b)
}

func accept(media []string) string {
	var parts []string
	for _, m := range media {
		parts = append(parts, m+"/*")
		for _, e := range catalog.Extensions[m] {
			parts = append(parts, "."+e)
		}
	}
	return strings.Join(parts, ",")
}

// pendingFile is an uploaded file waiting to be sent to Magic Hour; set
// puts its file_path in the params.
type pendingFile struct {
	field string
	fh    *multipart.FileHeader
	ext   string
	set   func(string)
}

// parseForm turns the form into params, collecting conversion errors by
// field name.
func parseForm(s *catalog.Schema, prefix string, form map[string][]string, files map[string][]*multipart.FileHeader,
	errs map[string]string, pending *[]*pendingFile) map[string]any {
	obj := map[string]any{}
	get := func(name string) string {
		v := form[name]
		if len(v) == 0 {
			return ""
		}
		return v[len(v)-1]
	}
	for _, p := range s.Properties {
		name := p.Name
		if prefix != "" {
			name = prefix + "." + p.Name
		}
		ps := p.Schema
		raw := get(name)
		switch {
		case ps.Type == catalog.TypeObject:
			sub := parseForm(ps, name, form, files, errs, pending)
			if len(sub) > 0 || s.IsRequired(p.Name) {
				obj[p.Name] = sub
			}
		case ps.File != nil:
			if fhs := files["file:"+name]; len(fhs) > 0 && fhs[0].Size > 0 {
				fh := fhs[0]
				ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(fh.Filename), "."))
				if !mediaAllowed(ext, ps.File.Media) {
					errs[name] = fmt.Sprintf("%s is not a %s file Magic Hour accepts (%s)", fh.Filename, strings.Join(ps.File.Media, "/"), exts(ps.File.Media))
					continue
				}
				key := p.Name
				obj[key] = fmt.Sprintf("api-assets/pending/%d.%s", len(*pending), ext)
				*pending = append(*pending, &pendingFile{field: name, fh: fh, ext: ext, set: func(v string) { obj[key] = v }})
			} else if t := strings.TrimSpace(raw); t != "" {
				obj[p.Name] = t
			}
		case ps.Type == catalog.TypeArray && ps.Items != nil && ps.Items.File != nil:
			var list []any
			for _, line := range strings.Split(raw, "\n") {
				if t := strings.TrimSpace(line); t != "" {
					list = append(list, t)
				}
			}
			for _, fh := range files["file:"+name] {
				if fh.Size == 0 {
					continue
				}
				ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(fh.Filename), "."))
				if !mediaAllowed(ext, ps.Items.File.Media) {
					errs[name] = fmt.Sprintf("%s is not a %s file Magic Hour accepts (%s)", fh.Filename, strings.Join(ps.Items.File.Media, "/"), exts(ps.Items.File.Media))
					continue
				}
				i := len(list)
				list = append(list, fmt.Sprintf("api-assets/pending/%d.%s", len(*pending), ext))
				*pending = append(*pending, &pendingFile{field: name, fh: fh, ext: ext, set: func(v string) { list[i] = v }})
			}
			if len(list) > 0 {
				obj[p.Name] = list
			}
		case ps.Type == catalog.TypeArray && ps.Items != nil && ps.Items.Type != catalog.TypeObject:
			var list []any
			for _, line := range strings.Split(raw, "\n") {
				t := strings.TrimSpace(line)
				if t == "" {
					continue
				}
				if ps.Items.Type == catalog.TypeNumber || ps.Items.Type == catalog.TypeInteger {
					f, err := strconv.ParseFloat(t, 64)
					if err != nil {
						errs[name] = fmt.Sprintf("%q is not a number", t)
						continue
					}
					list = append(list, f)
				} else {
					list = append(list, t)
				}
			}
			if len(list) > 0 {
				obj[p.Name] = list
			}
		case ps.Type == catalog.TypeArray:
			if t := strings.TrimSpace(raw); t != "" {
				var v []any
				if err := json.Unmarshal([]byte(t), &v); err != nil {
					errs[name] = "must be a JSON array: " + err.Error()
					continue
				}
				obj[p.Name] = v
			}
		case ps.Type == catalog.TypeBoolean:
			if raw == "true" || raw == "false" {
				obj[p.Name] = raw == "true"
			}
		case ps.Type == catalog.TypeNumber || ps.Type == catalog.TypeInteger:
			t := strings.TrimSpace(raw)
			if t == "" {
				continue
			}
			f, err := strconv.ParseFloat(t, 64)
			if err != nil {
				errs[name] = "must be a number"
				continue
			}
			obj[p.Name] = f
		default:
			if raw != "" {
				obj[p.Name] = raw
			}
		}
	}
	inferSources(s, obj)
	return obj
}

// isInferredSource reports whether a property is a "*_source" selector the
// form fills in itself when left empty (as the CLI does).
func isInferredSource(name string, ps *catalog.Schema) bool {
	return strings.HasSuffix(name, "_source") && slices.Contains(ps.Enum, "file")
}

// inferSources sets the "*_source" selectors of obj left empty: "file"
// when its file (or file path) is given, "youtube" when a YouTube URL is,
// else "none" where the API has it.
func inferSources(s *catalog.Schema, obj map[string]any) {
	for _, p := range s.Properties {
		if !isInferredSource(p.Name, p.Schema) {
			continue
		}
		if _, set := obj[p.Name]; set {
			continue
		}
		_, file := obj[strings.TrimSuffix(p.Name, "_source")+"_file_path"]
		_, yt := obj["youtube_url"]
		switch {
		case file:
			obj[p.Name] = "file"
		case yt && slices.Contains(p.Schema.Enum, "youtube"):
			obj[p.Name] = "youtube"
		case slices.Contains(p.Schema.Enum, "none"):
			obj[p.Name] = "none"
		}
	}
}

func mediaAllowed(ext string, media []string) bool {
	m := catalog.MediaOfExtension(ext)
	for _, x := range media {
		if x == m {
			return true
		}
	}
	return false
}

func exts(media []string) string {
	var out []string
	for _, m := range media {
		for _, e := range catalog.Extensions[m] {
			out = append(out, "."+e)
		}
	}
	return strings.Join(out, " ")
}

// fieldFor maps a validation error's field ("assets.face_mappings[0].new_face",
// "params.style.prompt") to the form control that shows it.
func fieldFor(field string, known map[string]*formField) string {
	field = strings.TrimPrefix(field, "params.")
	if field == "params" {
		return ""
	}
	for f := field; f != ""; {
		if known[f] != nil && known[f].Kind != "group" {
			return f
		}
		if i := strings.IndexByte(f, '['); i >= 0 {
			f = f[:i]
			continue
		}
		i := strings.LastIndexByte(f, '.')
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return ""
}

func indexFields(fs []*formField, m map[string]*formField) {
	for _, f := range fs {
		m[f.Name] = f
		indexFields(f.Children, m)
	}
}

func (d *Dashboard) handleSubmit(w http.ResponseWriter, r *http.Request, u *user) {
	op := d.lookupTool(r.PathValue("tool"))
	if op == nil {
		d.notFound(w, r, "There is no tool "+r.PathValue("tool")+".")
		return
	}
	ctx := r.Context()
	if r.Form == nil {
		_ = r.ParseForm()
	}
	form := map[string][]string(r.PostForm)
	var files map[string][]*multipart.FileHeader
	if r.MultipartForm != nil {
		form = r.MultipartForm.Value
		files = r.MultipartForm.File
		defer func() { _ = r.MultipartForm.RemoveAll() }()
	}
	sv := submitView{Tool: makeToolView(op), Idem: firstOr(form["idempotency_key"], "dash-"+randomString(12)), CanSubmit: u.Tenant != nil, Resubmit: true}
	errs := map[string]string{}
	var pending []*pendingFile
	params := parseForm(op.Request, "", form, files, errs, &pending)

	show := func(status int, general []string, fieldErrs map[string]string) {
		sv.Fields = buildFields(op.Request, "", form)
		known := map[string]*formField{}
		indexFields(sv.Fields, known)
		names := make([]string, 0, len(fieldErrs))
		for n := range fieldErrs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			msg := fieldErrs[n]
			if target := fieldFor(n, known); target != "" {
				f := known[target]
				if f.Error != "" {
					f.Error += "; "
				}
				label := ""
				if target != strings.TrimPrefix(n, "params.") {
					label = strings.TrimPrefix(strings.TrimPrefix(n, "params."), target) + ": "
				}
				f.Error += label + msg
				sv.FieldErrs = append(sv.FieldErrs, fieldLink{ID: f.ID, Label: target, Message: msg})
				if (f.Kind == "file" || f.Kind == "files") && len(files["file:"+target]) > 0 && f.Value == "" {
					f.Error += " (choose the file again)"
				}
			} else {
				label := strings.TrimPrefix(n, "params.")
				if label != "" {
					msg = label + ": " + msg
				}
				general = append(general, msg)
			}
		}
		for _, pf := range pending {
			if f := known[pf.field]; f != nil && f.Error == "" && !strings.HasPrefix(f.Value, "api-assets/") {
				f.Help = "Choose the file again (browsers do not keep a chosen file after the form is sent back). " + f.Help
			}
		}
		sv.Errors = general
		if u.Admin {
			sv.AdminNote = "The admin key cannot submit jobs (as in the API): sign in with a tenant key to submit."
		}
		d.render(w, r, status, "submit_form", view{Title: op.Summary, Nav: "submit", Data: sv})
	}

	if u.Tenant == nil {
		show(http.StatusForbidden, []string{"The admin key cannot submit jobs: sign in with a tenant key."}, nil)
		return
	}
	// The API's validation (the catalog), before anything is uploaded.
	if err := op.Validate(params); err != nil {
		var ve *catalog.ValidationError
		if !errors.As(err, &ve) {
			show(http.StatusBadRequest, []string{err.Error()}, errs)
			return
		}
		for _, fe := range ve.Fields {
			if _, dup := errs[fe.Field]; !dup {
				errs[fe.Field] = fe.Message
			}
		}
	}
	if len(errs) > 0 {
		show(http.StatusUnprocessableEntity, nil, errs)
		return
	}
	// Upload the files through the gateway, then submit as the API does.
	for _, pf := range pending {
		f, err := pf.fh.Open()
		if err != nil {
			show(http.StatusBadRequest, []string{"could not read the uploaded file " + pf.fh.Filename}, nil)
			return
		}
		fp, err := d.gw.UploadInput(ctx, u.Tenant.ID, pf.ext, f)
		f.Close()
		if err != nil {
			d.log.Warn("dashboard: input upload failed", "tenant", u.Tenant.ID, "err", err)
			show(http.StatusBadGateway, nil, map[string]string{pf.field: "upload failed: " + err.Error()})
			return
		}
		pf.set(fp)
		// Keep the uploaded path in the form: a second try reuses it.
		if len(files["file:"+pf.field]) == 1 {
			form[pf.field] = []string{fp}
		}
	}
	body, err := json.Marshal(map[string]any{"tool": op.Name, "params": params, "idempotency_key": sv.Idem,
		"metadata": map[string]any{"source": "dashboard"}})
	if err != nil {
		d.fail(w, r, err)
		return
	}
	res := d.gw.SubmitAs(ctx, u.Tenant, body)
	if res.JobID != "" && (res.Status == http.StatusAccepted || res.Status == http.StatusOK) {
		http.Redirect(w, r, "/jobs/"+res.JobID, http.StatusSeeOther)
		return
	}
	fieldErrs := map[string]string{}
	for _, fe := range res.Fields {
		fieldErrs[fe.Field] = fe.Message
	}
	var general []string
	if len(fieldErrs) == 0 || res.Status == http.StatusPaymentRequired {
		general = append(general, res.Message)
	}
	status := res.Status
	if status < 400 {
		status = http.StatusBadGateway
	}
	show(status, general, fieldErrs)
}

func firstOr(v []string, def string) string {
	if len(v) > 0 && v[0] != "" && len(v[0]) <= 255 {
		return v[0]
	}
	return def
}
