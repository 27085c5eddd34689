package main

import (
	"bytes"
	"os"
	"testing"
)

// TestGeneratedUpToDate fails when zz_operations.go is stale: run
// go generate ./magichour.
func TestGeneratedUpToDate(t *testing.T) {
	want, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../zz_operations.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("magichour/zz_operations.go is stale: run go generate ./magichour")
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		"all-faces": "AllFaces", "16:9": "16x9", "seedream-v4.5": "SeedreamV45", "Dr. Dre": "DrDre", "": "Empty",
	} {
		if got := enumSuffix(in); got != want {
			t.Errorf("enumSuffix(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"youtube_url": "YoutubeURL", "image_file_path": "ImageFilePath", "fps": "FPS", "id": "ID",
	} {
		if got := goName(in); got != want {
			t.Errorf("goName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFirstParagraph(t *testing.T) {
	in := "**What this API does**\n\nCreate a [thing](https://x.y/z).\n    \n**Good for**\n- a"
	if got := firstParagraph(in); got != "Create a thing." {
		t.Errorf("firstParagraph = %q", got)
	}
}
