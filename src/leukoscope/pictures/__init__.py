"""Cell pictures: the stored thumbnail (a cell's modalities side by side, and its tiles back),
native crops re-cut from the saved acquisition, the display views (auto-contrast, display
colours, the bright-field composite) and the one PNG encoder. The pipeline, the review page and
the report draw with these."""
