"""Streamlit-side helpers shared by the pages: cached loaders, plots and the sidebar."""
