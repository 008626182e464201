def test(str0):
    return re.findall(r'\d+', str0)
