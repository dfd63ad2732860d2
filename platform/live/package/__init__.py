"""Our CMAF packager: fMP4 boxes, the LL-HLS segmenter, and the sink its output goes to."""
