// Package catalogtest builds small Magic Hour spec documents for tests: the
// operations hourglass needs plus tools and values the built-in catalog does
// not have, as a newer spec would bring them.
package catalogtest

import "encoding/json"

// ExtraTool is the tool only ExtraSpec has: an audio tool (kind from its
// operationId, duration from the median of audio tools).
const ExtraTool = "ai-music-generator"

// ExtraModel is a model value of ai-image-generator only ExtraSpec has.
const ExtraModel = "brand-new-model"

func obj(props map[string]any, required ...string) map[string]any {
	m := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		m["required"] = required
	}
	return m
}

func jsonBody(schema map[string]any) map[string]any {
	return map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": schema}}}
}

func errResp(code string) map[string]any {
	return map[string]any{"description": code, "content": map[string]any{"application/json": map[string]any{"schema": obj(map[string]any{
		"code": map[string]any{"type": "string", "enum": []any{code}}, "message": map[string]any{"type": "string"}}, "code", "message")}}}
}

func createOp(id, kind string, body map[string]any) map[string]any {
	return map[string]any{"post": map[string]any{
		"operationId": id, "summary": id, "tags": []any{kind + " Projects"},
		"requestBody": map[string]any{"required": true, "content": jsonBody(body)["content"]},
		"responses": map[string]any{
			"200": map[string]any{"description": "Success", "content": jsonBody(obj(map[string]any{
				"id":              map[string]any{"type": "string", "example": "cuid-example"},
				"credits_charged": map[string]any{"type": "integer", "example": 20},
			}, "id", "credits_charged"))["content"]},
			"400": errResp("invalid_request"), "401": errResp("unauthorized"),
		},
	}}
}

func projectRoutes(kind string) map[string]any {
	idParam := []any{map[string]any{"name": "id", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}}
	project := obj(map[string]any{
		"id": map[string]any{"type": "string"}, "status": map[string]any{"type": "string"},
		"downloads": map[string]any{"type": "array", "items": obj(map[string]any{"url": map[string]any{"type": "string"}, "expires_at": map[string]any{"type": "string"}})},
	}, "id", "status")
	return map[string]any{
		"get":    map[string]any{"operationId": kind + "Projects.get", "parameters": idParam, "responses": map[string]any{"200": map[string]any{"description": "ok", "content": jsonBody(project)["content"]}, "404": errResp("not_found")}},
		"delete": map[string]any{"operationId": kind + "Projects.delete", "parameters": idParam, "responses": map[string]any{"204": map[string]any{"description": "deleted"}}},
	}
}

// ExtraSpec returns a valid OpenAPI 3 document with upload-urls, the
// project routes, ai-image-generator (whose model enum has ExtraModel) and
// ExtraTool.
func ExtraSpec() []byte {
	upload := obj(map[string]any{"items": map[string]any{"type": "array", "items": obj(map[string]any{
		"type": map[string]any{"type": "string", "enum": []any{"image", "video", "audio"}}, "extension": map[string]any{"type": "string"}}, "type", "extension")}}, "items")
	uploadResp := obj(map[string]any{"items": map[string]any{"type": "array", "items": obj(map[string]any{
		"upload_url": map[string]any{"type": "string"}, "expires_at": map[string]any{"type": "string"}, "file_path": map[string]any{"type": "string"}})}}, "items")
	doc := map[string]any{
		"openapi": "3.0.2",
		"info":    map[string]any{"title": "Magic Hour API (test)", "version": "test"},
		"paths": map[string]any{
			"/v1/files/upload-urls": map[string]any{"post": map[string]any{"operationId": "files.uploadUrls",
				"requestBody": map[string]any{"content": jsonBody(upload)["content"]},
				"responses":   map[string]any{"200": map[string]any{"description": "ok", "content": jsonBody(uploadResp)["content"]}}}},
			"/v1/video-projects/{id}": projectRoutes("video"),
			"/v1/image-projects/{id}": projectRoutes("image"),
			"/v1/audio-projects/{id}": projectRoutes("audio"),
			"/v1/ai-image-generator": createOp("aiImageGenerator.createImage", "Image", obj(map[string]any{
				"name":        map[string]any{"type": "string"},
				"image_count": map[string]any{"type": "integer", "minimum": 1, "maximum": 4, "example": 1},
				"model": map[string]any{"type": "string", "enum": []any{"default", "flux-schnell", ExtraModel}, "example": ExtraModel,
					"description": "**Models:**\n- `" + ExtraModel + "` - from 30 credits/image\n  - Available for tiers: pro, business"},
				"style": obj(map[string]any{"prompt": map[string]any{"type": "string", "minLength": 1, "example": "a lighthouse"}}, "prompt"),
			}, "style")),
			"/v1/" + ExtraTool: createOp("aiMusicGenerator.createAudio", "Audio", obj(map[string]any{
				"name":  map[string]any{"type": "string", "example": "My song"},
				"style": obj(map[string]any{"prompt": map[string]any{"type": "string", "minLength": 1, "example": "calm piano"}}, "prompt"),
				"assets": obj(map[string]any{"audio_file_path": map[string]any{"type": "string",
					"description": "A reference track: a URL or a file_path.", "example": "api-assets/id/ref.mp3"}}),
			}, "style")),
		},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err) // a fixed document: cannot fail
	}
	return b
}
