"""Everything image-like (later PDF- and video-like) -> parts ready to send, within Qwen's budgets.

`sniff` recognises inputs cheaply, `sources` turns notebook objects into PIL images,
`plan` computes Qwen3-VL's sizes, `codec` encodes, and `images` ties them together.
Nothing here knows about HTTP or IPython.
"""
