// Package catalog describes every Magic Hour API operation: path, method,
// project kind, request and response schemas, input-file fields, validation
// rules, prices and tier rules stated in the spec, and the observed median
// duration. The SDK, the emulator, the CLI and the gateway all read the spec
// through it, so that it is interpreted exactly once.
//
// # A catalog is a value
//
// A *Catalog is built from a spec document at run time:
//
//	c, err := catalog.Load(specBytes, catalog.WithSource(path), catalog.WithDate(fetched))
//
// Load checks the document with kin-openapi and refuses (with a *LoadError
// naming what is wrong) one that is not JSON, not OpenAPI 3, invalid, or
// lacks the operations hourglass needs (upload-urls and the project get and
// delete routes). A tool that only a newer spec has works: its kind comes
// from its operationId or tag ("...createVideo", "Video Projects"), its P50
// from the median of its kind until processing-times.tsv lists it
// (P50Estimated). Keep the last good *Catalog when a reload fails; a
// *Catalog is immutable and safe to share between goroutines, so swapping
// one in (an atomic.Pointer[catalog.Catalog]) is all a refresh needs.
//
// catalog.Default() is the catalog embedded at build time: catalog.json,
// distilled by ./gen from ../shared/magichour/openapi-latest.json and
// processing-times.tsv (go generate ./internal/catalog). It is generated
// data, not a copy of the spec; magichour/zz_operations.go is generated from
// it in turn. The package-level Lookup, Route, Creates and Project read the
// default catalog; code that may run on another catalog calls the same
// methods on the *Catalog in use:
//
//	c.Lookup("face-swap")             // by name, GoName or operationId
//	c.Route("GET", "/v1/video-projects/abc")
//	c.Creates()                       // the video, image and audio tools
//	c.Project(catalog.KindVideo, catalog.RoleGet)
//	c.MedianP50(catalog.KindVideo)
//	c.Date, c.DateString(), c.Source, c.SHA256, c.Version
//
// What callers use per operation:
//
//	op.CheckJSON(body) (warnings, err)  // validation; err is *ValidationError
//	op.FileRefs(body)                   // the one walker over input-file fields
//	op.EstimateCredits(body)            // the one credit model, with its source
//	op.TierRefusal(tier, body)          // tier rules the spec states
//	op.IsTool(), op.Catalog()
//
// and on decoded bodies: Get, Set, Number, String (dotted paths such as
// "assets.face_mappings[2].new_face"), IsStoragePath, IsURL. PlainText
// turns a markdown description into plain text, Project is the wire type of
// a Magic Hour project (GET /v1/<kind>-projects/{id}), Fetch reads a spec
// from a file or an http(s) URL.
//
// # Validation never refuses what the live API accepts
//
// File fields take http(s) URLs (a missing extension is a warning),
// api-assets/..., saved-items/... and the legacy video|image|audio/...
// paths. Unknown members are passed through with a Warning. A value outside
// the catalog's enums or ranges is refused with FieldError.OutOfCatalog set;
// ValidationError.Hint names the catalog's date and the ways out (a newer
// catalog, or skipping local checks).
package catalog
