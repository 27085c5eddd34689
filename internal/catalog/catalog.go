// Package catalog describes every Magic Hour API operation; see doc.go.
package catalog

import (
	"strings"
	"time"
)

// Kind is the family an operation belongs to. Create operations of kind
// video, image and audio make projects read back from the matching
// /v1/<kind>-projects/{id} route.
type Kind string

// The kinds of operation.
const (
	KindVideo         Kind = "video"
	KindImage         Kind = "image"
	KindAudio         Kind = "audio"
	KindFaceDetection Kind = "face-detection"
	KindFiles         Kind = "files"
	KindAccount       Kind = "account"
	KindSavedItems    Kind = "saved-items"
)

// Role says what an operation does, independent of its kind.
type Role string

// The roles of operation.
const (
	RoleCreate     Role = "create"      // POST /v1/<tool>: starts a job
	RoleGet        Role = "get"         // GET /v1/<kind>-projects/{id}
	RoleDelete     Role = "delete"      // DELETE /v1/<kind>-projects/{id}
	RoleUploadURLs Role = "upload-urls" // POST /v1/files/upload-urls
	RoleAccount    Role = "account"     // GET /v1/account
	RoleList       Role = "list"        // GET /v1/saved-items
	RoleOther      Role = "other"       // a route the catalog has no model for
)

// Type is a JSON schema type.
type Type string

// JSON schema types used by the spec.
const (
	TypeString  Type = "string"
	TypeNumber  Type = "number"
	TypeInteger Type = "integer"
	TypeBoolean Type = "boolean"
	TypeObject  Type = "object"
	TypeArray   Type = "array"
)

// Schema is the subset of a JSON schema the API uses, flattened for Go.
// Numbers that may be absent are pointers; Enum holds the allowed values as
// their JSON text without quotes ("all-faces", "4").
type Schema struct {
	Type        Type     `json:"type,omitempty"`
	Format      string   `json:"format,omitempty"`
	Description string   `json:"description,omitempty"`
	Nullable    bool     `json:"nullable,omitempty"`
	Deprecated  bool     `json:"deprecated,omitempty"`
	Enum        []string `json:"enum,omitempty"`
	Default     string   `json:"default,omitempty"` // JSON text, empty when none
	Example     string   `json:"example,omitempty"` // JSON text, empty when none

	Minimum    *float64 `json:"minimum,omitempty"`
	Maximum    *float64 `json:"maximum,omitempty"`
	MultipleOf *float64 `json:"multipleOf,omitempty"`
	MinLength  *int     `json:"minLength,omitempty"`
	MaxLength  *int     `json:"maxLength,omitempty"`
	Pattern    string   `json:"pattern,omitempty"`
	MinItems   *int     `json:"minItems,omitempty"`
	MaxItems   *int     `json:"maxItems,omitempty"`

	Properties []Property `json:"properties,omitempty"` // in spec order
	Required   []string   `json:"required,omitempty"`
	Items      *Schema    `json:"items,omitempty"`

	// File is set on string fields that reference an input file: a URL,
	// or a file_path from the upload-urls operation.
	File *FileField `json:"file,omitempty"`
}

// Property is one named member of an object schema.
type Property struct {
	Name   string  `json:"name"`
	Schema *Schema `json:"schema"`
}

// FileField describes an input-file field.
type FileField struct {
	// Media lists the media types the field accepts: image, video, audio.
	Media []string `json:"media"`
}

// Prop returns the named property's schema, or nil.
func (s *Schema) Prop(name string) *Schema {
	if s == nil {
		return nil
	}
	for _, p := range s.Properties {
		if p.Name == name {
			return p.Schema
		}
	}
	return nil
}

// IsRequired reports whether name is required in the object s.
func (s *Schema) IsRequired(name string) bool {
	for _, r := range s.Required {
		if r == name {
			return true
		}
	}
	return false
}

// Operation is one API operation.
type Operation struct {
	ID          string   `json:"id"`     // operationId in the spec, e.g. "faceSwap.createVideo"
	Name        string   `json:"name"`   // tool name, e.g. "face-swap"; for project routes "video-projects.get"
	GoName      string   `json:"goName"` // exported Go name, e.g. "FaceSwap"
	Method      string   `json:"method"`
	Path        string   `json:"path"` // e.g. "/v1/face-swap" or "/v1/video-projects/{id}"
	Kind        Kind     `json:"kind,omitempty"`
	Role        Role     `json:"role"`
	Summary     string   `json:"summary,omitempty"`
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`

	// P50 is the observed median processing time of a create operation,
	// zero for operations that do not start a job. A tool that
	// processing-times.tsv does not list yet gets the median of its kind
	// (P50Estimated is then true).
	P50          time.Duration `json:"p50,omitempty"`
	P50Estimated bool          `json:"p50Estimated,omitempty"`

	// Params lists the query parameters (GET /v1/saved-items?type=...).
	Params []Parameter `json:"params,omitempty"`

	Request  *Schema `json:"request,omitempty"`  // nil when the operation has no body
	Response *Schema `json:"response,omitempty"` // the success response body, nil for 204
	// SuccessStatus is 200 or 204.
	SuccessStatus int `json:"successStatus"`
	// Statuses lists every status code the spec documents.
	Statuses []int `json:"statuses,omitempty"`
	// ErrorCodes maps each documented error status to the machine-readable
	// codes the spec lists for it ({"402": ["insufficient_credits", ...]}).
	ErrorCodes map[int][]string `json:"errorCodes,omitempty"`

	// Files lists the paths of the request's input-file fields, e.g.
	// "assets.image_file_path", "assets.face_mappings[].new_face".
	Files []FilePath `json:"files,omitempty"`

	// Prices are the per-value prices the spec states in prose ("from 50
	// credits/image"), used by EstimateCredits; TierRules are the values
	// the spec says need a paid tier.
	Prices    []Price    `json:"prices,omitempty"`
	TierRules []TierRule `json:"tierRules,omitempty"`

	cat *Catalog // the catalog the operation belongs to
}

// Parameter is one query or path parameter.
type Parameter struct {
	Name     string  `json:"name"`
	In       string  `json:"in"`
	Required bool    `json:"required,omitempty"`
	Schema   *Schema `json:"schema,omitempty"`
}

// FilePath locates an input-file field in a request body: Path is a dotted
// path where "[]" steps into every element of an array.
type FilePath struct {
	Path  string   `json:"path"`
	Media []string `json:"media"`
}

// Segments splits p.Path into its steps, e.g. ["assets", "face_mappings[]", "new_face"].
func (p FilePath) Segments() []string { return strings.Split(p.Path, ".") }

// Lookup returns the operation of the default catalog with the given name
// ("face-swap"), GoName ("FaceSwap") or spec ID, or nil.
func Lookup(name string) *Operation { return Default().Lookup(name) }

// Route returns the default catalog's operation served at method and a
// concrete path, or nil.
func Route(method, path string) *Operation { return Default().Route(method, path) }

// Creates returns the default catalog's project-creating operations, sorted
// by name.
func Creates() []*Operation { return Default().Creates() }

// Project returns the default catalog's get or delete operation for projects
// of kind k.
func Project(k Kind, role Role) *Operation { return Default().Project(k, role) }

// Terminal reports whether a project status is final.
func Terminal(status string) bool {
	return status == "complete" || status == "error" || status == "canceled"
}
func matchPath(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if strings.HasPrefix(ps[i], "{") {
			if xs[i] == "" {
				return false
			}
			continue
		}
		if ps[i] != xs[i] {
			return false
		}
	}
	return true
}
