"""RealCheck's Streamlit upload app: `realcheck app --model DIR` (or `streamlit run streamlit_app/app.py`).

`analysis` holds what does not need Streamlit (model path resolution, scoring a batch of uploads through
the one inference path, the results table and CSV); `app` is the page.
"""
