"""Embeddings: the same test images seen by PCA, by UMAP and by the model, side by side,
with linked selection, hover thumbnails, nearest neighbours and the KNN score of each.

URL: ``?run=<id>&n=<sample size>&point=<test index>`` reopens the same view.
"""

from app.embeddings_page import render

render()
