package media_test

import (
	"bytes"
	"fmt"
	"image"
	_ "image/png"
	"io"

	"github.com/hourglasshq/hourglass/internal/media"
)

func Example() {
	png, err := media.Image("png", 640, 360, 42)
	if err != nil {
		panic(err)
	}
	cfg, format, _ := image.DecodeConfig(bytes.NewReader(png))
	fmt.Println(format, cfg.Width, cfg.Height, media.ContentType(format))

	mp4, _ := media.Video(1280, 720, 5, 42)
	fmt.Println(string(mp4[4:8]), media.ContentType(".mp4"))

	mp3, _ := media.Audio("mp3", 10, 42)
	fmt.Printf("%x %s\n", mp3[:2], media.ContentType("mp3"))

	r := media.Synthetic(1<<30, 42)
	end, _ := r.Seek(0, io.SeekEnd)
	fmt.Println(end)
	// Output:
	// png 640 360 image/png
	// ftyp video/mp4
	// fffb audio/mpeg
	// 1073741824
}

func ExampleSynthetic() {
	r := media.Synthetic(10, 7)
	head := make([]byte, 4)
	r.(io.ReaderAt).ReadAt(head, 6) // the last four bytes, without moving r
	rest, _ := io.ReadAll(r)
	fmt.Println(len(rest), bytes.Equal(rest[6:], head))
	// Output: 10 true
}
