// image.encode — camera frames to JPEG or PNG, so they can cross a link (a raw frame never
// goes on the wire) or be stored. Fields pass through unchanged; the blob becomes the image.
//
// Ports: in (blob: a frame; an image already in the target format passes as is, another one
// is decoded and re-encoded) -> out (image: image/jpeg or image/png).
// Options: format (jpeg | png), quality (JPEG 1..100, default 80), compression (PNG 0..9).
//
//   - id: jpeg
//     op: image.encode
//     on: edge
//     from: cam
//     with: { format: jpeg, quality: 75 }
#include <string>

#include "operators/image/frame.h"
#include "runtime/blob_encoders.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

class ImageEncode : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "image.encode";
    s.summary = "Encodes camera frames as JPEG or PNG, the form in which frames cross links.";
    s.example =
        "- id: jpeg\n  op: image.encode\n  on: edge\n  from: cam\n"
        "  with: { format: jpeg, quality: 75 }";
    s.inputs = {{"in", "blob", "camera frames (images in another format are re-encoded)"}};
    s.outputs = {{"out", "image", "the same messages with an image/jpeg or image/png blob"}};
    s.options = {
        opt_enum("format", {"jpeg", "png"}, "image format").def("jpeg"),
        opt_int("quality", "JPEG quality: higher is larger and sharper")
            .def("80")
            .at_least(1)
            .at_most(100),
        opt_int("compression", "PNG compression level: higher is smaller and slower")
            .def("3")
            .at_least(0)
            .at_most(9),
    };
    return s;
  }

  explicit ImageEncode(const Options& o)
      : format_(o.get_string("format") == "png" ? ImageFormat::kPng : ImageFormat::kJpeg),
        level_(format_ == ImageFormat::kJpeg ? static_cast<int>(o.get_int("quality"))
                                             : static_cast<int>(o.get_int("compression"))) {}

  void process(int, MessagePtr m, Context& ctx) override {
    if (m->blob.type == image_type(format_) && m->blob.bytes) return ctx.emit(std::move(m));
    std::string why;
    if (!frame_pixels(m->blob, pixels_, why)) return ctx.error(m.get(), why);
    std::string bytes;
    bool ok = encode_image(pixels_, format_, level_, bytes, why);
    pixels_.release();  // keep no reference to the frame past this call
    if (!ok) return ctx.error(m.get(), why);
    auto w = make_mutable(std::move(m));
    w->blob = make_image_blob(format_, std::move(bytes));
    ctx.emit(std::move(w));
  }

 private:
  ImageFormat format_;
  int level_;
  cv::Mat pixels_;
};

EF_REGISTER_OPERATOR(ImageEncode)

// Frames that reach a link without an image.encode stage cross it as JPEG at quality 80, so
// moving a frame reader between edge and cloud is a one-word `on:` edit. An image.encode stage
// before the link chooses another format or quality.
constexpr int kLinkJpegQuality = 80;

bool encode_frame_for_link(const Blob& in, Blob& out, std::string& why) {
  const cv::Mat* pixels = native_frame(in);
  if (!pixels) {
    why = "a '" + in.type + "' blob without pixels cannot be encoded";
    return false;
  }
  std::string bytes;
  if (!encode_image(*pixels, ImageFormat::kJpeg, kLinkJpegQuality, bytes, why)) return false;
  out = make_image_blob(ImageFormat::kJpeg, std::move(bytes));
  return true;
}

const bool ef_frame_link_encoders =
    register_blob_encoder(std::string(kFrameBgr),
                          {"frame", "JPEG, quality 80", encode_frame_for_link}) &&
    register_blob_encoder(std::string(kFrameGray),
                          {"frame", "JPEG, quality 80", encode_frame_for_link});

}  // namespace
}  // namespace edgeflow
