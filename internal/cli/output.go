package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/hourglasshq/hourglass/magichour"
)

// result is the one JSON object a command prints with --json.
type result struct {
	ID             string      `json:"id"`
	Tool           string      `json:"tool,omitempty"`
	Kind           string      `json:"kind"`
	Status         string      `json:"status"`
	CreditsCharged int         `json:"credits_charged"`
	Error          *jobError   `json:"error"`
	Outputs        []outputRef `json:"outputs"`
	Downloads      []string    `json:"downloads"`
	Emulator       bool        `json:"emulator,omitempty"`
	// ExitCode is set when the command fails: the process's exit code.
	ExitCode int `json:"exit_code,omitempty"`
}

type jobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// outputRef is one output: the local path once downloaded, and its URL.
type outputRef struct {
	Path string `json:"path,omitempty"`
	URL  string `json:"url"`
	// Unchanged: the same bytes were already saved at Path.
	Unchanged bool `json:"unchanged,omitempty"`
}

// newResult fills a result from whatever is known: the create answer, the
// project, the saved files.
func newResult(tool magichour.Tool, kind magichour.Kind, cr *magichour.CreateResponse, p *magichour.Project, files []magichour.DownloadedFile) *result {
	r := &result{Tool: string(tool), Kind: string(kind), Outputs: []outputRef{}, Downloads: []string{}}
	if cr != nil {
		r.ID, r.CreditsCharged, r.Kind = cr.ID, cr.CreditsCharged, string(cr.Kind)
	}
	if p != nil {
		r.ID, r.Status, r.CreditsCharged = p.ID, string(p.Status), p.CreditsCharged
		if p.Kind != "" {
			r.Kind = string(p.Kind)
		}
		if p.Error != nil {
			r.Error = &jobError{Code: p.Error.Code, Message: p.Error.Message}
		}
		for _, d := range p.Downloads {
			r.Downloads = append(r.Downloads, d.URL)
		}
	}
	saved := map[int]magichour.DownloadedFile{}
	for _, f := range files {
		saved[f.Index] = f
	}
	for i, u := range r.Downloads {
		o := outputRef{URL: u}
		if f, ok := saved[i]; ok {
			o.Path, o.Unchanged = f.Path, f.Unchanged
		}
		r.Outputs = append(r.Outputs, o)
	}
	return r
}

func (r *result) writeJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// writeHuman prints the result for people: one headline, then one line per
// output (the saved path, or the URL with --no-download).
func (r *result) writeHuman(w io.Writer, color bool, files []magichour.DownloadedFile) {
	mark := "✓"
	if r.Status == string(magichour.StatusError) || r.Status == string(magichour.StatusCanceled) {
		mark = "✗"
	} else if r.Status != string(magichour.StatusComplete) {
		mark = "·"
	}
	if color {
		switch mark {
		case "✓":
			mark = "\x1b[32m✓\x1b[0m"
		case "✗":
			mark = "\x1b[31m✗\x1b[0m"
		}
	}
	what := r.Kind + " project"
	if r.Tool != "" {
		what = r.Tool
	}
	fmt.Fprintf(w, "%s %s %s %s (%d credits)\n", mark, what, r.ID, r.Status, r.CreditsCharged)
	if r.Error != nil {
		fmt.Fprintf(w, "  error %s: %s\n", r.Error.Code, r.Error.Message)
	}
	sizes := map[string]int64{}
	for _, f := range files {
		sizes[f.Path] = f.Size
	}
	for _, o := range r.Outputs {
		if o.Path != "" && o.Unchanged {
			fmt.Fprintf(w, "  unchanged %s (%s, the same bytes were already there; --overwrite to replace)\n", o.Path, humanBytes(sizes[o.Path]))
		} else if o.Path != "" {
			fmt.Fprintf(w, "  saved %s (%s)\n", o.Path, humanBytes(sizes[o.Path]))
		} else {
			fmt.Fprintf(w, "  %s\n", o.URL)
		}
	}
}

// emit prints r on stdout, as JSON or for people.
func (e *env) emit(r *result, files []magichour.DownloadedFile) error {
	r.Emulator = e.emulated
	if e.json {
		return r.writeJSON(e.stdout)
	}
	r.writeHuman(e.stdout, e.color, files)
	return nil
}
