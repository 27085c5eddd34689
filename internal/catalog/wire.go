package catalog

import (
	"encoding/json"
	"time"
)

// ProjectBody is the wire type of a Magic Hour project, the answer of
// GET /v1/<kind>-projects/{id} (and the payload of its webhooks). The
// emulator and the gateway's drop-in API both answer with it. It encodes
// the fields of its Kind only, the deprecated ones the official clients
// still read included (total_frame_cost; download on videos).
type ProjectBody struct {
	Kind           Kind          `json:"-"`
	ID             string        `json:"id"`
	Name           *string       `json:"name"`
	Status         string        `json:"status"`
	Type           string        `json:"type"`
	CreatedAt      string        `json:"created_at"`
	Width          int           `json:"width"`
	Height         int           `json:"height"`
	Enabled        bool          `json:"enabled"`
	StartSeconds   float64       `json:"start_seconds"`
	EndSeconds     float64       `json:"end_seconds"`
	FPS            float64       `json:"fps"`
	ImageCount     int           `json:"image_count"`
	CreditsCharged int64         `json:"credits_charged"`
	TotalFrameCost int64         `json:"total_frame_cost"`
	Error          *ProjectError `json:"error"`
	Downloads      []Download    `json:"downloads"`
	Download       *Download     `json:"download"`
}

// ProjectError is the error of a failed project.
type ProjectError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Download is one output of a finished project.
type Download struct {
	URL       string `json:"url"`
	ExpiresAt string `json:"expires_at"`
}

// Timestamp formats t as the API does: "2024-10-19T05:16:19.027Z".
func Timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// MarshalJSON writes the fields of p.Kind.
func (p ProjectBody) MarshalJSON() ([]byte, error) {
	if p.Downloads == nil {
		p.Downloads = []Download{}
	}
	switch p.Kind {
	case KindVideo:
		return json.Marshal(struct {
			ID             string        `json:"id"`
			Name           *string       `json:"name"`
			Status         string        `json:"status"`
			Type           string        `json:"type"`
			CreatedAt      string        `json:"created_at"`
			Width          int           `json:"width"`
			Height         int           `json:"height"`
			Enabled        bool          `json:"enabled"`
			StartSeconds   float64       `json:"start_seconds"`
			EndSeconds     float64       `json:"end_seconds"`
			CreditsCharged int64         `json:"credits_charged"`
			TotalFrameCost int64         `json:"total_frame_cost"`
			FPS            float64       `json:"fps"`
			Error          *ProjectError `json:"error"`
			Downloads      []Download    `json:"downloads"`
			Download       *Download     `json:"download"`
		}{p.ID, p.Name, p.Status, p.Type, p.CreatedAt, p.Width, p.Height, p.Enabled, p.StartSeconds, p.EndSeconds,
			p.CreditsCharged, p.TotalFrameCost, p.FPS, p.Error, p.Downloads, p.Download})
	case KindImage:
		return json.Marshal(struct {
			ID             string        `json:"id"`
			Name           *string       `json:"name"`
			Status         string        `json:"status"`
			ImageCount     int           `json:"image_count"`
			Type           string        `json:"type"`
			CreatedAt      string        `json:"created_at"`
			Enabled        bool          `json:"enabled"`
			CreditsCharged int64         `json:"credits_charged"`
			TotalFrameCost int64         `json:"total_frame_cost"`
			Downloads      []Download    `json:"downloads"`
			Error          *ProjectError `json:"error"`
		}{p.ID, p.Name, p.Status, p.ImageCount, p.Type, p.CreatedAt, p.Enabled, p.CreditsCharged, p.TotalFrameCost, p.Downloads, p.Error})
	default:
		return json.Marshal(struct {
			ID             string        `json:"id"`
			Name           *string       `json:"name"`
			Status         string        `json:"status"`
			Type           string        `json:"type"`
			CreatedAt      string        `json:"created_at"`
			Enabled        bool          `json:"enabled"`
			CreditsCharged int64         `json:"credits_charged"`
			Downloads      []Download    `json:"downloads"`
			Error          *ProjectError `json:"error"`
		}{p.ID, p.Name, p.Status, p.Type, p.CreatedAt, p.Enabled, p.CreditsCharged, p.Downloads, p.Error})
	}
}
