package magichour

// FaceDetectionService detects faces.
type FaceDetectionService struct{ c *Client }
