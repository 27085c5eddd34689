package magichour

import (
	"context"
	"net/http"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// FaceDetectionService finds the faces in an image or video: POST
// /v1/face-detection starts a detection, GET /v1/face-detection/{id} reads
// it. The detected face paths feed FaceSwapCreateParamsAssetsFaceMappingsItem.OriginalFace
// (and its photo counterpart) for multi-face swaps.
type FaceDetectionService struct{ c *Client }

// FaceDetectionStatus is the state of a face detection.
type FaceDetectionStatus string

// Face detection statuses; Complete and Error are terminal.
const (
	FaceDetectionQueued    FaceDetectionStatus = "queued"
	FaceDetectionRendering FaceDetectionStatus = "rendering"
	FaceDetectionComplete  FaceDetectionStatus = "complete"
	FaceDetectionError     FaceDetectionStatus = "error"
)

// Terminal reports whether the detection is finished (complete or error).
func (s FaceDetectionStatus) Terminal() bool {
	return s == FaceDetectionComplete || s == FaceDetectionError
}

// FaceDetection is the state of a face detection task.
type FaceDetection struct {
	ID             string              `json:"id"`
	CreditsCharged int                 `json:"credits_charged"`
	Status         FaceDetectionStatus `json:"status"`
	// Faces is filled in as faces are detected.
	Faces []Face `json:"faces"`
}

// Face is one detected face.
type Face struct {
	// Path is the face's file path ("api-assets/.../0-0.png"), for
	// face_mappings[].original_face.
	Path string `json:"path"`
	// URL shows the face image.
	URL string `json:"url"`
}

// Create starts a face detection. The answer's ID is read back with Get;
// its Kind is empty and its Tool is "face-detection". Validation and retries
// behave as for Client.Create.
func (s *FaceDetectionService) Create(ctx context.Context, params FaceDetectionCreateParams) (*CreateResponse, error) {
	return s.c.create(ctx, catalog.Lookup("face-detection"), params)
}

// Get reads a face detection: GET /v1/face-detection/{id}.
func (s *FaceDetectionService) Get(ctx context.Context, id string) (*FaceDetection, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	var fd FaceDetection
	if err := s.c.doJSON(ctx, request{method: http.MethodGet, path: "/v1/face-detection/" + escapeID(id)}, &fd); err != nil {
		return nil, err
	}
	return &fd, nil
}
