"""Placeholder until its page lands."""

import streamlit as st

st.title("conditional")
st.info("This page is being built.")
