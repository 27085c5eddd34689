package gateway

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// The list route's query: several statuses (status=a,b or repeated),
// metadata filters (metadata.key=value), a creation-time range and a
// checked cursor. The SQL half is listConditions, used by ListJobs.

// jobIDPattern is the shape newJobID produces (the list cursor is one).
var jobIDPattern = regexp.MustCompile(`^job_[0-9a-hjkmnp-tv-z]{26}$`)

// metadataKeyPattern bounds metadata filter keys to plain names, so a key
// is safe inside a JSON path.
var metadataKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_\-]{1,64}$`)

// maxMetadataFilters bounds the metadata filters of one list request.
const maxMetadataFilters = 8

// parseListQuery fills the filter fields of f from q; a refusal is a 400
// naming the parameter.
func parseListQuery(q url.Values, f *JobFilter) *apiError {
	bad := func(field, msg string) *apiError {
		return &apiError{Code: "invalid_" + strings.SplitN(field, ".", 2)[0], Message: field + ": " + msg, Fields: []fieldError{{field, msg}}}
	}
	f.Status = ""
	for _, v := range q["status"] {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if !Status(s).Valid() {
				return bad("status", fmt.Sprintf("unknown status %q", s))
			}
			f.Statuses = append(f.Statuses, Status(s))
		}
	}
	if c := q.Get("cursor"); c != "" {
		if !jobIDPattern.MatchString(c) {
			return bad("cursor", "not a cursor from a previous page's next_cursor")
		}
		f.Cursor = c
	}
	for name, key := range map[string]*time.Time{"created_after": &f.CreatedAfter, "created_before": &f.CreatedBefore} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return bad(name, "want an RFC 3339 time such as 2026-01-02T15:04:05Z")
			}
			*key = t.UTC()
		}
	}
	for k, vs := range q {
		mk, ok := strings.CutPrefix(k, "metadata.")
		if !ok {
			continue
		}
		if !metadataKeyPattern.MatchString(mk) {
			return bad(k, "metadata filter keys are 1-64 letters, digits, _ or -")
		}
		if f.Metadata == nil {
			f.Metadata = map[string]string{}
		}
		f.Metadata[mk] = vs[0]
		if len(f.Metadata) > maxMetadataFilters {
			return bad("metadata", fmt.Sprintf("at most %d metadata filters", maxMetadataFilters))
		}
	}
	return nil
}

// listConditions returns the WHERE conditions and arguments of the filter
// fields beyond tenant, tool and cursor. A metadata value matches a string
// value exactly, or a number or boolean by its JSON text.
func (d dialect) listConditions(f JobFilter) (where []string, args []any) {
	statuses := f.Statuses
	if f.Status != "" {
		statuses = append(statuses, f.Status)
	}
	if len(statuses) > 0 {
		marks := make([]string, len(statuses))
		for i, s := range statuses {
			marks[i], args = "?", append(args, string(s))
		}
		where = append(where, "status IN ("+strings.Join(marks, ", ")+")")
	}
	if !f.CreatedAfter.IsZero() {
		where, args = append(where, "created_at > ?"), append(args, f.CreatedAfter.UnixMilli())
	}
	if !f.CreatedBefore.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, f.CreatedBefore.UnixMilli())
	}
	for k, v := range f.Metadata {
		if d.name == "postgres" {
			where = append(where, "(metadata::jsonb ->> CAST(? AS TEXT)) = CAST(? AS TEXT)")
			args = append(args, k, v)
			continue
		}
		// json_extract gives SQL values: booleans become 1/0, so compare
		// the JSON text of non-strings.
		where = append(where, "(CASE json_type(metadata, ?) WHEN 'text' THEN json_extract(metadata, ?) "+
			"WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(json_extract(metadata, ?) AS TEXT) END) = ?")
		p := `$."` + k + `"`
		args = append(args, p, p, p, v)
	}
	return where, args
}

// callbackRefusal is the message of a refused callback_url, naming the
// switch that allows private addresses when that was the reason.
func callbackRefusal(err error) string {
	if errors.Is(err, errPrivateAddress) {
		return err.Error() + " (to allow private callback URLs, start hourglass serve with --allow-private-callbacks; it is on by itself with the embedded emulator)"
	}
	return err.Error()
}
